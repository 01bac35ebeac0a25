"""ingest_vs_pillow: our whole upload pipeline against the bare Pillow work for the same files.

The photo is a 12-megapixel (4000 × 3000) camera-like JPEG made once with
Pillow and kept in bench/data/: smooth light, shapes, sensor-like noise and
fine texture, so that it compresses like a real photo (several megabytes at
quality 92), with EXIF orientation 6 (taken in portrait), the camera's make
and model, the time and GPS coordinates.

Ours is `donations.ingest.ingest()`: the duplicate check, the decoding in the
isolated worker process (signature, header checks, full decode, orientation,
colour, the pixels rebuilt without metadata and hashed), the master and its
two derivatives, the perceptual hash and its near-duplicate lookup, the files
written atomically and the rows created. Between repetitions the image's rows
and files are deleted (untimed), so each run is a first upload.

The baseline does what any Python service must do for the same outputs, in
this process: open, draft when the rule applies, exif_transpose, convert to
RGB, resize to 4096 / 1024 / 256 (LANCZOS, as ours) and encode the three
JPEGs at our qualities. The two are measured alternately.
"""

from __future__ import annotations

import io
import math
import random
import time

from .common import DATA, Context, median, ratio, timed, use_database

CAMERA_SIZE = (4000, 3000)
CAMERA_FILE = DATA / "camera-4000x3000.jpg"


def camera_jpeg(size: tuple[int, int] = CAMERA_SIZE, seed: int = 1, path=None) -> bytes:
    """A photo-like JPEG with camera EXIF (orientation 6, GPS), made once and cached."""
    path = (
        path if path is not None else (CAMERA_FILE if size == CAMERA_SIZE and seed == 1 else None)
    )
    if path is not None and path.exists():
        return path.read_bytes()
    data = _make_photo(size, seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def _make_photo(size: tuple[int, int], seed: int, quality: int = 92) -> bytes:
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    width, height = size
    # Sky-to-ground light: three gradients, one per channel, slightly different.
    channels = []
    for offset in (0, 20, 45):
        gradient = Image.linear_gradient("L").rotate(rng.uniform(-20, 20) + offset / 3)
        channels.append(gradient.resize(size, Image.Resampling.BICUBIC))
    image = Image.merge("RGB", channels)
    radial = Image.radial_gradient("L").resize(size, Image.Resampling.BICUBIC)
    image = Image.composite(image, Image.new("RGB", size, (200, 170, 120)), radial)
    draw = ImageDraw.Draw(image)
    for _ in range(60):  # things in the scene
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(width / 60, width / 8)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        box = [x - r, y - r * rng.uniform(0.4, 1.2), x + r, y + r * rng.uniform(0.4, 1.2)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(6))  # a lens, not a vector drawing
    # Texture and sensor noise: what makes camera JPEGs big.
    noise = Image.effect_noise(size, 28).convert("RGB")
    image = Image.blend(image, noise, 0.12)
    fine = Image.effect_noise((width // 4, height // 4), 60).resize(size).convert("RGB")
    image = Image.blend(image, fine, 0.06)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=_camera_exif(rng), subsampling=1)
    return buffer.getvalue()


def _camera_exif(rng: random.Random) -> bytes:
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "BenchCam"
    exif[ExifTags.Base.Model] = "Model 12"
    exif[ExifTags.Base.Orientation] = 6  # held upright: rotate 90° clockwise to show
    exif[ExifTags.Base.DateTime] = "2025:06:01 12:34:56"
    exif[ExifTags.Base.Software] = "bench"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    latitude, longitude = 48.2082 + rng.uniform(-0.01, 0.01), 16.3738 + rng.uniform(-0.01, 0.01)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = _dms(latitude)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = _dms(longitude)
    gps[ExifTags.GPS.GPSAltitude] = 171.0
    return exif.tobytes()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = math.floor(value)
    minutes = math.floor((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 2)
    return (float(degrees), float(minutes), seconds)


# --- The two sides -----------------------------------------------------------------


def bare_pillow(data: bytes) -> list[bytes]:
    """The same three JPEGs, with nothing but Pillow, in this process."""
    from PIL import Image, ImageOps

    from donations import imaging  # the pipeline that ingestion runs in its worker

    image = Image.open(io.BytesIO(data))
    width, height = image.size
    side = 4096
    if image.format == "JPEG" and max(width, height) >= 2 * side:  # our draft rule
        ratio_ = side / max(width, height)
        image.draft("RGB", (math.ceil(width * ratio_), math.ceil(height * ratio_)))
    image = ImageOps.exif_transpose(image).convert("RGB")
    master = imaging.fit(image, side)  # the same resize as ingestion, on bare Pillow
    outputs = []
    for picture, quality in (
        (master, imaging.MASTER_QUALITY),
        (imaging.fit(master, imaging.DISPLAY_SIDE), imaging.DERIVATIVE_QUALITY),
        (imaging.fit(master, imaging.THUMB_SIDE), imaging.DERIVATIVE_QUALITY),
    ):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality, optimize=True)
        outputs.append(buffer.getvalue())
    return outputs


def _ours(data: bytes, label) -> float:
    """Seconds for one upload through ingest(); its rows and files are removed afterwards."""
    from donations.ingest import ingest

    started = time.perf_counter()
    outcome = ingest(data, filename="IMG_0001.JPG", labels=[label])
    elapsed = time.perf_counter() - started
    if not outcome.accepted:
        raise RuntimeError(f"the bench photo was not accepted: {outcome.message}")
    _forget(outcome.image)
    return elapsed


def _forget(image) -> None:
    """Delete the image's rows and files, so the next upload is a first one again."""
    from donations.storage import RENDITIONS, private_storage

    for kind in RENDITIONS:
        private_storage().delete(image.file_name(kind))
    image.pairs.all().delete()
    image.delete()


def ingest_vs_pillow(ctx: Context) -> dict:
    from labels.models import Label

    use_database(ctx.large)
    data = camera_jpeg()
    label = Label.objects.filter(parent__isnull=True, is_meta=False).order_by("pk").first()
    label = Label.objects.filter(name="dog", parent__isnull=True).first() or label
    ours: list[float] = []
    bare: list[float] = []
    # Warm-up: starts the decoding worker and fills the caches of both sides.
    _ours(data, label)
    bare_pillow(data)
    for _ in range(ctx.scale.ingest_repeats):
        ours.append(_ours(data, label))
        bare += timed(lambda: bare_pillow(data), 1)
    ctx.details["camera_jpeg_bytes"] = len(data)
    return {
        "ingest_ms": median(ours) * 1000,
        "pillow_ms": median(bare) * 1000,
        "ingest_vs_pillow": ratio(median(ours), median(bare)),
    }
