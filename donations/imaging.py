"""Turn uploaded image bytes into three clean renditions and their hashes, with Pillow.

Everything here runs in the calling process, with no isolation: uploads reach
it through donations.decoding, whose worker process may die for them. For
every upload, ``process()``:

1. sniffs the first bytes: only JPEG, PNG and WebP go further, and other known
   formats are named in the refusal (the file name and Content-Type are never
   consulted); a JPEG of more scans than ``Limits.max_jpeg_scans`` is refused
   from its markers (donations.jpeg), before a decoder spends minutes on it;
2. opens them with Pillow's allow-list and checks the header: the pixel count,
   before a single pixel is decoded, and the number of frames;
3. decodes fully (``load()``) before it reads any metadata, so a truncated or
   damaged file is refused now, not when a thumbnailer trips over it later;
4. normalises: 8-bit L, RGB or RGBA, embedded colour profile converted to sRGB,
   EXIF orientation applied to the pixels;
5. rebuilds a new image from the raw pixels, so no metadata (EXIF and its GPS,
   XMP, comments, maker notes, ICC, PNG text, bytes after the end) survives,
   and hashes those pixels;
6. encodes three renditions: PNG only when some pixel is transparent, else JPEG.

Settings are read when used, never at import.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import io
import logging
import math
import struct
from dataclasses import dataclass, field

from django.conf import settings
from PIL import ExifTags, Image, ImageCms, ImageFile

from . import jpeg

# Registering exactly the three decoders we accept keeps Image.open() from
# importing every other plugin (init()) when it looks for "WEBP".
from PIL import JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401  # isort: skip

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
DISPLAY_SIDE = 1024
THUMB_SIDE = 256
MASTER_QUALITY = 90
DERIVATIVE_QUALITY = 85


# --- What callers get -------------------------------------------------------


class Rejected(Exception):
    """An upload we refuse, with a reason a person understands."""

    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __reduce__(self):  # keep all three fields through pickling
        return (type(self), (self.code, self.message, self.status))

    def __repr__(self) -> str:
        return f"Rejected({self.code!r}, {self.message!r}, {self.status})"


@dataclass(frozen=True)
class Rendition:
    data: bytes = field(repr=False)
    width: int
    height: int


@dataclass(frozen=True)
class Decoded:
    format: str  # "jpeg" or "png", the stored format of all three renditions
    master: Rendition
    display: Rendition
    thumb: Rendition
    pixels_sha256: str
    phash: int
    source_format: str  # "JPEG", "PNG" or "WEBP", as detected from the bytes


@dataclass(frozen=True)
class Limits:
    """What one decoding may do: read from settings in the web process, sent to the worker."""

    max_pixels: int = 50_000_000
    master_side: int = 4096
    max_jpeg_scans: int = 64

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_pixels=int(getattr(settings, "IMAGE_MAX_PIXELS", cls.max_pixels)),
            master_side=int(getattr(settings, "IMAGE_MASTER_MAX_SIDE", cls.master_side)),
            max_jpeg_scans=int(getattr(settings, "IMAGE_MAX_JPEG_SCANS", cls.max_jpeg_scans)),
        )


_MESSAGES = {
    "empty": "The file is empty.",
    "not_an_image": "This file is not a picture we can read; we accept JPEG, PNG and WebP.",
    "animated": "Animated pictures are not accepted; please upload a still photo.",
    "truncated": "The file is cut off (truncated); please upload it again.",
    "corrupt": (
        "The picture data in this file is damaged; please check that it opens "
        "on your device and upload it again."
    ),
    "too_big_to_decode": (
        "This picture needs too much memory to process; please upload a smaller version."
    ),
    "decoder_crashed": (
        "Our image decoder failed on this file; please save it again with another "
        "program and upload it again."
    ),
    "timeout": (
        "This picture took too long to process; please upload a smaller or simpler version."
    ),
    "unavailable": "We cannot process pictures right now; please try again in a minute.",
    "deferred": (
        "This upload has used up its time with our picture decoder; please send this "
        "picture again in a minute."
    ),
}


def rejection(code: str, status: int = 422) -> Rejected:
    """The refusal for ``code``, in the words of _MESSAGES."""
    return Rejected(code, _MESSAGES[code], status)


# --- Recognising the bytes --------------------------------------------------

# Formats people upload by mistake, by their first bytes, as the noun phrase
# the refusal uses ("This file is a GIF image; ...").
_SIGNATURES = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"II+\x00", "a TIFF image"),
    (b"MM\x00+", "a TIFF image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"\x00\x00\x02\x00", "a CUR cursor"),
    (b"8BPS", "a PSD (Photoshop) file"),
    (b"%PDF-", "a PDF document"),
    (b"%!PS", "an EPS (PostScript) file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS (PostScript) file"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"qoif", "a QOI image"),
)
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")


def _is_accepted(head: bytes) -> bool:
    """JPEG, PNG or WebP by magic bytes: the same tests Pillow's three plugins make."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return True
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _describe(head: bytes) -> str | None:
    """What a non-accepted file is, as a noun phrase, or None when we cannot tell."""
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "a BMP image"
    if head[4:8] == b"ftyp":
        return _describe_iso_media(head)
    return _describe_text(head)


def _describe_iso_media(head: bytes) -> str:
    """HEIC, AVIF and MP4/MOV share one container; its brands say which it is."""
    box_size = int.from_bytes(head[:4], "big")
    brands = head[8 : max(12, min(box_size, len(head)))]
    if b"avif" in brands or b"avis" in brands:
        return "an AVIF image"
    if any(brand in brands for brand in _HEIF_BRANDS):
        return "a HEIC (HEIF) photo"
    return "a video"


def _describe_text(head: bytes) -> str | None:
    # The first kilobyte decides, as in MediaWiki's script detection.
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and b"<svg" in text:
        return "an SVG drawing"
    if any(marker in text for marker in _HTML_MARKERS):
        return "an HTML page"
    if text.startswith(b"<?xml"):
        return "an XML document"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # final=False: a character cut at the end of the sample is not an error.
        sample = decoder.decode(head[:1024], final=False)
    except UnicodeDecodeError:
        return None
    if sample and all(char.isprintable() or char in "\t\r\n\f" for char in sample):
        return "a text file"
    return None


def check_signature(data: bytes) -> None:
    """Refuse what is not JPEG, PNG or WebP by its first bytes: a few comparisons, no Pillow."""
    if not data:
        raise rejection("empty")
    if _is_accepted(data[:16]):
        return
    kind = _describe(data[:1024])
    if kind is None:
        raise rejection("not_an_image")
    raise Rejected("unsupported_format", f"This file is {kind}; we accept JPEG, PNG and WebP.")


def check_before_decoding(data: bytes, limits: Limits) -> None:
    """Refuse what the bytes alone condemn: cheap, and no decoder runs, so fine in any process.

    The format by its first bytes, then a JPEG's number of scans by its markers.
    """
    check_signature(data)
    if data.startswith(b"\xff\xd8") and jpeg.too_many_scans(data, limits.max_jpeg_scans):
        raise Rejected(
            "too_many_scans",
            f"This JPEG has more than {limits.max_jpeg_scans} scans (progressive passes), "
            "far more than cameras and editors write; please save it again as an ordinary JPEG.",
        )


# --- The pipeline -----------------------------------------------------------


def process(data: bytes, *, limits: Limits | None = None) -> Decoded:
    """Check, decode and re-encode an upload in this process, with no isolation.

    The worker of donations.decoding runs this after setting Pillow's own pixel
    limit to ``limits.max_pixels`` and turning DecompressionBombWarning into an
    error: process-wide changes that a web process should not make. Raises
    Rejected for every file we cannot or will not accept, and RuntimeError,
    for every file, if ImageFile.LOAD_TRUNCATED_IMAGES is on.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A setting of this process, not a fault of the file: load() would return
        # a part-decoded picture instead of raising, so nothing could be refused.
        raise RuntimeError("uploads cannot be checked with ImageFile.LOAD_TRUNCATED_IMAGES on")
    limits = limits or Limits.from_settings()
    check_before_decoding(data, limits)
    try:
        return _pipeline(data, limits)
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(str(error), limits) from None
    except MemoryError:
        raise rejection("too_big_to_decode") from None
    except Exception as error:
        # Hostile bytes reach Pillow's parsers and C decoders, which answer
        # with many exception types (OSError, SyntaxError, ValueError,
        # struct.error, EOFError, ...): each means "we cannot read this".
        raise _unreadable(error, data) from error


_EXPECTED_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


def _unreadable(error: Exception, data: bytes) -> Rejected:
    if not isinstance(error, _EXPECTED_DECODER_ERRORS):
        # Possibly a bug of ours rather than a bad file: leave a trace.
        logger.warning("unexpected error while decoding an upload", exc_info=error)
    if isinstance(error, EOFError) or "truncated" in str(error).lower() or _riff_cut_short(data):
        return rejection("truncated")
    return rejection("corrupt")


def _riff_cut_short(data: bytes) -> bool:
    """A WebP shorter than its RIFF header says (libwebp only reports "could not decode")."""
    return data[:4] == b"RIFF" and len(data) < 8 + int.from_bytes(data[4:8], "little")


def _pipeline(data: bytes, limits: Limits) -> Decoded:
    image, source_format = _decode_upright(data, limits)
    image, pixels_sha256 = _rebuild(image)
    master = fit(image, limits.master_side)
    del image  # up to 50 megapixels: let it go before encoding
    display = fit(master, DISPLAY_SIDE)
    thumb = fit(master, THUMB_SIDE)
    stored = "png" if master.mode == "RGBA" else "jpeg"
    return Decoded(
        format=stored,
        master=_encode(master, stored, MASTER_QUALITY),
        display=_encode(display, stored, DERIVATIVE_QUALITY),
        thumb=_encode(thumb, stored, DERIVATIVE_QUALITY),
        pixels_sha256=pixels_sha256,
        phash=_dhash(thumb),
        source_format=source_format,
    )


def _decode_upright(data: bytes, limits: Limits) -> tuple[Image.Image, str]:
    """The decoded pixels: 8-bit L, RGB or RGBA (only if some pixel is see-through), sRGB, upright."""
    image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    _check_pixels(image, limits)
    _check_still(image)
    source_format = image.format
    _draft_if_huge(image, limits)
    _decode_pixels(image)
    orientation = _orientation(image)
    icc_profile = image.info.get("icc_profile")
    image = _to_working_mode(image)
    image = _to_srgb(image, icc_profile)
    image = _transpose(image, orientation)
    return _drop_opaque_alpha(image), source_format


def _check_pixels(image: Image.Image, limits: Limits) -> None:
    width, height = image.size
    if width * height > limits.max_pixels:
        raise Rejected(
            "too_many_pixels",
            f"This picture is {width} × {height} pixels ({_megapixels(width * height)} "
            f"megapixels); the limit is {_megapixels(limits.max_pixels)} megapixels.",
        )


def _too_many_pixels(pillow_message: str, limits: Limits) -> Rejected:
    """Pillow's own check fired in open(), before we saw the size: it tells the pixel count only."""
    counts = [int(word) for word in pillow_message.replace("(", " ").split() if word.isdigit()]
    found = f"has {_megapixels(counts[0])} megapixels" if counts else "has too many pixels"
    return Rejected(
        "too_many_pixels",
        f"This picture {found}; the limit is {_megapixels(limits.max_pixels)} megapixels.",
    )


def _megapixels(pixels: int) -> str:
    value = pixels / 1_000_000
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _check_still(image: Image.Image) -> None:
    # MPO (several JPEGs in one file) would only ever show its first picture.
    if image.format == "MPO" or getattr(image, "n_frames", 1) > 1:
        raise rejection("animated")


def _decode_pixels(image: Image.Image) -> None:
    """Decode every pixel now, and let a decoder error out: it means the file is damaged.

    This must be the image's first load(). Pillow raises a decoder error only
    once: the next load() returns whatever pixels were decoded. And reading
    metadata can load the image (PNG's getexif() does, unless an eXIf chunk
    comes before the pixel data), where an error taken for malformed EXIF
    would let a damaged picture through.
    """
    image.load()


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 when there is none or it cannot be read."""
    _decode_pixels(image)  # a no-op once done; getexif() must not be the first load
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:
        # Malformed EXIF costs the orientation, not the picture.
        return 1


def _draft_if_huge(image: Image.Image, limits: Limits) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the master is that much smaller.

    The scale depends only on the header and the master side, so the same file
    always decodes to the same pixels and pixels_sha256 stays deterministic.
    """
    width, height = image.size
    longest = max(width, height)
    if image.format != "JPEG" or longest < 2 * limits.master_side:
        return
    ratio = limits.master_side / longest
    image.draft(image.mode, (math.ceil(width * ratio), math.ceil(height * ratio)))


_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_working_mode(image: Image.Image) -> Image.Image:
    """8-bit L, RGB or RGBA; CMYK stays until its colour profile has been applied."""
    if image.mode in _SIXTEEN_BIT_GREY:
        # convert("L") clips everything above 255 to white; scale instead.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode in ("L", "RGB", "CMYK"):
        return image
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # palette without transparency, YCbCr, RGBX, ...


_PROFILE_SPACE = {"RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK"}


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    if icc_profile and image.mode in _PROFILE_SPACE:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            if source.profile.xcolor_space.strip() == _PROFILE_SPACE[image.mode]:
                output = "RGB" if image.mode == "CMYK" else image.mode
                return ImageCms.profileToProfile(image, source, _srgb(), outputMode=output)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile costs the colour correction, not the picture
    return image.convert("RGB") if image.mode == "CMYK" else image


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# The table of ImageOps.exif_transpose(), which we do not call: it raises on
# malformed EXIF and rewrites metadata that we throw away anyway.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _transpose(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        return image.convert("RGB")
    return image


def _rebuild(image: Image.Image) -> tuple[Image.Image, str]:
    """A new image holding only the pixels, and the sha256 of mode, size and pixels.

    Re-saving an opened image can carry hidden data along (a JPEG keeps its
    comment, a PNG its ICC profile); an image made from raw bytes has nothing else.
    """
    raw = image.tobytes()
    digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    digest.update(raw)
    return Image.frombytes(image.mode, image.size, raw), digest.hexdigest()


def fit(image: Image.Image, side: int) -> Image.Image:
    """The image with its long side at most ``side``; never upscaled."""
    width, height = image.size
    longest = max(width, height)
    if longest <= side:
        return image
    size = (max(1, round(width * side / longest)), max(1, round(height * side / longest)))
    # reducing_gap: a cheap integer reduce() first, then LANCZOS for the rest.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image, stored: str, quality: int) -> Rendition:
    buffer = io.BytesIO()
    if stored == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=quality, optimize=True)
    return Rendition(data=buffer.getvalue(), width=image.width, height=image.height)


# --- Perceptual hash --------------------------------------------------------

_BITS64 = (1 << 64) - 1


def _dhash(image: Image.Image) -> int:
    """64-bit difference hash (dHash), as a signed int64 for PostgreSQL's bigint.

    The picture, flattened onto white and made grey, is shrunk to 9×8 pixels;
    each bit says whether a pixel is brighter than its right-hand neighbour.
    Resizing and re-compression barely move it. Computed from the thumbnail,
    so copies of different sizes are compared at the same scale.
    """
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    pixels = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS).tobytes()
    value = 0
    for row in range(8):
        for column in range(8):
            left = pixels[row * 9 + column]
            value = (value << 1) | (left > pixels[row * 9 + column + 1])
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_distance(a: int, b: int) -> int:
    """Hamming distance of two 64-bit hashes stored as signed integers."""
    return ((a ^ b) & _BITS64).bit_count()


def phash_bands(h: int) -> tuple[int, int, int, int]:
    """The four 16-bit bands (0..65535), band0 the lowest bits, as in Image.phash_band0..3.

    Hashes within Hamming distance 3 share at least one band.
    """
    unsigned = h & _BITS64
    return tuple((unsigned >> (16 * band)) & 0xFFFF for band in range(4))  # type: ignore[return-value]
