"""A hostile (and a merely odd) corpus of uploads, generated in memory.

Nothing binary is checked in: every file here is made with Pillow, zlib or by
hand, from a fixed seed, so a failing case can be rebuilt exactly.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

from PIL import ExifTags, Image, ImageCms, ImageDraw, PngImagePlugin

HTML = b"<html><script>alert(1)</script></html>"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def scene(width: int = 640, height: int = 480, seed: int = 1) -> Image.Image:
    """A photo-like picture: a gradient sky and some solid shapes, different per seed."""
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 8, width // 2), rng.randrange(height // 8, height // 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - w // 2, y - h // 2, x + w // 2, y + h // 2), fill=colour)
    return image


def noise(width: int, height: int, seed: int = 1, mode: str = "RGB") -> Image.Image:
    rng = random.Random(seed)
    size = width * height * len(mode)
    return Image.frombytes(mode, (width, height), rng.randbytes(size))


def jpeg(width: int = 640, height: int = 480, seed: int = 1, **options) -> bytes:
    return encode(scene(width, height, seed), "JPEG", quality=90, **options)


# --- PNG by hand --------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with a valid CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims a size its (empty) pixel data does not have."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def png_rgb16(width: int = 32, height: int = 16) -> bytes:
    """A 16-bit-per-channel RGB PNG, which Pillow cannot write itself."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type: none
        for x in range(width):
            row += struct.pack(">HHH", x * 65535 // width, y * 65535 // height, 40000)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + png_chunk(b"IEND", b"")
    )


def png_with_html() -> bytes:
    """A valid PNG carrying HTML in a tEXt chunk and again after IEND (a polyglot)."""
    plain = encode(scene(64, 48), "PNG")
    after_header = 8 + 25  # signature, then the IHDR chunk
    text = png_chunk(b"tEXt", b"Comment\x00" + HTML)
    return plain[:after_header] + text + plain[after_header:] + HTML


# --- Valid oddities -------------------------------------------------------------


def png_grey16(width: int = 64, height: int = 8) -> bytes:
    image = Image.new("I;16", (width, height))
    for x in range(width):
        for y in range(height):
            image.putpixel((x, y), x * 1024)  # 0 .. 64512: mostly above 255
    return encode(image, "PNG")


def palette_png_with_transparency() -> bytes:
    """A palette PNG whose colour 0 is fully transparent, used by its left half."""
    image = Image.new("P", (40, 20), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    ImageDraw.Draw(image).rectangle((0, 0, 19, 19), fill=0)
    return encode(image, "PNG", transparency=0)


def cmyk_jpeg() -> bytes:
    return encode(scene(80, 60).convert("CMYK"), "JPEG")


def grey_jpeg() -> bytes:
    return encode(scene(80, 60).convert("L"), "JPEG")


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def swapped_primaries_profile() -> bytes:
    """An RGB profile whose red primary is sRGB's blue and vice versa.

    Red pixels tagged with it are blue once converted to sRGB: proof that the
    profile was applied rather than dropped.
    """
    profile = bytearray(srgb_profile())
    (count,) = struct.unpack_from(">I", profile, 128)
    entries = {}
    for index in range(count):
        at = 132 + 12 * index
        entries[bytes(profile[at : at + 4])] = at
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    profile[red + 4 : red + 12], profile[blue + 4 : blue + 12] = (
        profile[blue + 4 : blue + 12],
        profile[red + 4 : red + 12],
    )
    return bytes(profile)


SECRET_COMMENT = b"shot at home by Alice"
SECRET_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-xmp-payload</x:xmpmeta>'


def private_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (13.0, 24.0, 36.0),
    }
    return exif.tobytes()


def phone_jpeg() -> bytes:
    """A 64x32 JPEG stored sideways (EXIF orientation 6) with GPS, XMP, ICC and a comment.

    The stored pixels are red on the left half and blue on the right, so the
    upright picture (turned 90 degrees clockwise) is red on top, blue below.
    """
    image = Image.new("RGB", (64, 32), (255, 0, 0))
    ImageDraw.Draw(image).rectangle((32, 0, 63, 31), fill=(0, 0, 255))
    return encode(
        image,
        "JPEG",
        quality=95,
        exif=private_exif(orientation=6),
        icc_profile=srgb_profile(),
        comment=SECRET_COMMENT,
        xmp=SECRET_XMP,
    )


def upright_jpeg_with_metadata() -> bytes:
    """GPS, XMP and a comment on a picture that needs no turning nor colour conversion."""
    return encode(
        scene(64, 48),
        "JPEG",
        exif=private_exif(),
        comment=SECRET_COMMENT,
        xmp=SECRET_XMP,
    )


def transparent_png_with_metadata() -> bytes:
    """A see-through PNG with EXIF (GPS), a text chunk and a colour profile we cannot use."""
    image = scene(64, 48).convert("RGBA")
    ImageDraw.Draw(image).rectangle((0, 0, 15, 15), fill=(0, 0, 0, 0))
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", SECRET_COMMENT.decode())
    return encode(
        image, "PNG", exif=private_exif(), pnginfo=text, icc_profile=b"not a usable profile"
    )


# --- Refused on sight -------------------------------------------------------------


def animated_webp() -> bytes:
    frames = [scene(64, 48, seed) for seed in (1, 2)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def apng() -> bytes:
    frames = [scene(64, 48, seed) for seed in (1, 2)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def animated_gif() -> bytes:
    frames = [scene(64, 48, seed) for seed in (1, 2)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def mpo() -> bytes:
    """Two JPEGs in one file (a stereo camera's Multi Picture Object)."""
    frames = [scene(64, 48, seed) for seed in (1, 2)]
    return encode(frames[0], "MPO", save_all=True, append_images=frames[1:])


def heic_header() -> bytes:
    """The start of an iPhone HEIC: an ISO media ftyp box (we sniff, never decode it)."""
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + b"\x00" * 64


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", jpeg(32, 32))
    return buffer.getvalue()


def other_formats() -> dict[str, bytes]:
    """Files of formats we refuse, keyed by the word the refusal must name."""
    picture = scene(64, 48)
    return {
        "BMP": encode(picture, "BMP"),
        "TIFF": encode(picture, "TIFF"),
        "GIF": encode(picture, "GIF"),
        "ICO": encode(picture, "ICO"),
        "PDF": encode(picture, "PDF"),
        "AVIF": encode(picture, "AVIF"),
        "HEIC": heic_header(),
        "PSD": b"8BPS\x00\x01" + b"\x00" * 64,
        "EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "SVG": (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">'
            b"<script>alert(1)</script></svg>"
        ),
        "HTML": b"<!DOCTYPE html>\n" + HTML,
        "ZIP": zip_archive(),
        "text": b"Dear ImageMonkey,\nhere is my holiday photo.\n",
    }


# --- Slow to decode ----------------------------------------------------------------


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


class _BitWriter:
    """Huffman-coded bits, most significant first, with 0xFF bytes stuffed (FF 00)."""

    def __init__(self):
        self.out, self.byte, self.used = bytearray(), 0, 0

    def put(self, value: int, count: int) -> None:
        for shift in range(count - 1, -1, -1):
            self.byte = (self.byte << 1) | ((value >> shift) & 1)
            self.used += 1
            if self.used == 8:
                self.out += b"\xff\x00" if self.byte == 0xFF else bytes([self.byte])
                self.byte, self.used = 0, 0

    def finish(self) -> bytes:
        if self.used:
            self.put((1 << (8 - self.used)) - 1, 8 - self.used)  # pad with 1-bits
        return bytes(self.out)


def many_scans_jpeg(width: int, height: int, scans: int, refine: bool = False) -> bytes:
    """A grey progressive JPEG of ``scans`` scans that are a few dozen bytes each.

    The first scan gives every block a DC of 0 (one bit per block); each further
    scan covers all 63 AC coefficients of every block with a handful of
    end-of-band runs (EOB14: up to 32,767 blocks per 15-bit code). libjpeg only
    warns about the repeated scans, and still passes over every block for each:
    a refinement scan (``refine``) looks at all 63 coefficients of each block.
    The bytes stay tiny while the decoding time grows with ``scans`` × pixels.
    """
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    one_code = bytes([1] + [0] * 15)  # a single Huffman code, of one bit: "0"
    header = (
        b"\xff\xd8"
        + jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
        + jpeg_segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + jpeg_segment(0xC4, b"\x00" + one_code + b"\x00")  # DC: difference 0
        + jpeg_segment(0xC4, b"\x10" + one_code + b"\xe0")  # AC: EOB14
    )
    # One 0-bit per block, then 1-bits up to the byte: never an 0xFF to stuff.
    dc_bits = bytes(blocks // 8) + (bytes([0xFF >> (blocks % 8)]) if blocks % 8 else b"")
    runs, left = _BitWriter(), blocks
    while left:
        run = min(left, 32767)
        runs.put(0, 1)
        runs.put(run - 16384, 14)
        left -= run
    dc_scan = jpeg_segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + dc_bits
    approximation = b"\x10" if refine else b"\x00"  # Ah=1, Al=0: a refinement
    ac_scan = jpeg_segment(0xDA, b"\x01\x01\x00\x01\x3f" + approximation) + runs.finish()
    return header + dc_scan + ac_scan * (scans - 1) + b"\xff\xd9"


# --- Damaged ----------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def random_bytes(size: int = 4096, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def bit_flipped(data: bytes, count: int, seed: int = 1, flips: int = 8) -> list[bytes]:
    """``count`` copies of ``data``, each with ``flips`` random bits flipped (the magic bytes spared)."""
    rng = random.Random(seed)
    variants = []
    for _ in range(count):
        damaged = bytearray(data)
        for _ in range(flips):
            at = rng.randrange(4, len(damaged))
            damaged[at] ^= 1 << rng.randrange(8)
        variants.append(bytes(damaged))
    return variants
