"""The decoding worker: the one process that parses uploaded bytes.

donations.decoding starts it with ``python -I`` and an empty environment, so
that nothing of the web process reaches it: no SECRET_KEY, DATABASE_URL or
REDIS_URL, no Django settings (it never loads them), no open file but its end
of the pipe (and stdin, stdout and stderr). It applies its limits to itself,
runs its pipeline once on small samples (so that nothing is left to import),
enters its sandbox (donations.sandbox: no_new_privs and a seccomp filter) and
says whether it is ready; then it answers requests on the pipe until the web
process closes it.

Both directions carry JSON and raw bytes, never pickles: the web process must
not unpickle what a process that parsed hostile bytes sends. This module
writes the replies and reads them (``unpack``), so the format has one home.

Nothing here reads Django settings: everything the worker needs comes on its
command line (its process limits) or with each request (the Limits).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import struct
import sys
import warnings
from dataclasses import asdict
from multiprocessing.connection import Connection

from PIL import Image, ImageFile

from . import sandbox
from .imaging import Decoded, Limits, Rejected, Rendition, process, rejection

MAX_REPLY_BYTES = 512 * 1024 * 1024
# How much lower than its web process the worker runs (nice). On a small host the
# decoding of a few uploads at once would otherwise take the cores from the page views
# and votes of everyone else; niced, it gets what they leave, and all of it when idle.
NICENESS = 10
CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where donations/ is


def command(
    connection_fd: int,
    memory_mb: int,
    cpu_seconds: int,
    *,
    require_sandbox: bool = True,
    probe: str | None = None,
) -> list[str]:
    """The command line that starts a worker on ``connection_fd`` (which it must inherit).

    ``-I`` (isolated mode) ignores PYTHON* variables, the user's site-packages
    and the current folder; the folder that holds this app comes on the line.
    ``probe`` (tests only) names what a sandboxed worker tries instead of serving.
    """
    bootstrap = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from donations.worker import main; main(sys.argv[2:])"
    )
    return [
        sys.executable,
        "-I",
        "-c",
        bootstrap,
        CODE_ROOT,
        str(connection_fd),
        str(memory_mb),
        str(cpu_seconds),
        "required" if require_sandbox else "optional",
        *(["--probe", probe] if probe else []),
    ]


def main(argv: list[str]) -> None:
    """The worker process: ``<fd> <memory MB> <CPU seconds per task> required|optional``."""
    connection_fd, memory_mb, cpu_seconds = (int(value) for value in argv[:3])
    require_sandbox = argv[3] == "required"
    probe = argv[5] if argv[4:5] == ["--probe"] else None
    connection = Connection(connection_fd)
    # Started with none; Python itself may have set LC_CTYPE (PEP 538).
    os.environ.clear()
    _lower_limit(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    _lower_limit(resource.RLIMIT_CORE, 0)  # a crash must not write the upload to disk
    os.nice(NICENESS)  # before the sandbox, which allows no setpriority
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings.simplefilter("ignore")  # hostile files would fill the logs with warnings
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    _load_everything()
    try:
        sandbox.enter(connection_fd)
        unsandboxed = ""
    except sandbox.SandboxUnavailable as error:
        if require_sandbox:
            connection.send_bytes(json.dumps({"ready": False, "error": str(error)}).encode())
            return
        unsandboxed = str(error)
    if probe:
        connection.send_bytes(sandbox.probe(probe))
        return
    connection.send_bytes(json.dumps({"ready": True, "unsandboxed": unsandboxed}).encode())
    try:
        _serve(connection, cpu_seconds)
    except KeyboardInterrupt:
        pass  # Ctrl-C of `make run` reaches the whole process group
    except BaseException as error:
        # A traceback would read source files, which the sandbox forbids.
        sys.stderr.write(f"the decoding worker failed: {error!r}\n")
        os._exit(70)


def _load_everything() -> None:
    """Import now whatever decoding may need, and run it once: the sandbox forbids files later.

    Pillow imports plugins and helpers on first use (TIFF for EXIF, MPO,
    ImageColor, ImagePalette…), OpenSSL reads its configuration on the first
    hash, and a traceback reads source lines: all of that opens files. Every
    kind of picture goes through the whole pipeline once, so its modules and
    tables are loaded before the filter is in place.
    """
    import linecache

    from PIL import ImageColor, ImagePalette, MpoImagePlugin, TiffImagePlugin  # noqa: F401

    Image.preinit()
    for data in _samples():
        with contextlib.suppress(Rejected):
            process(data, limits=Limits())
    # After this, tracebacks (of a log line) come without their source lines.
    linecache.updatecache = lambda filename, module_globals=None: []


def _samples() -> list[bytes]:
    """Small pictures of each kind the pipeline treats differently."""
    from PIL import ImageCms

    def encoded(image: Image.Image, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    rgb = Image.linear_gradient("L").resize((24, 16)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turned
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    transparent = rgb.convert("RGBA")
    transparent.putpixel((0, 0), (0, 0, 0, 0))
    palette = rgb.convert("P")
    photo = encoded(rgb, "JPEG", exif=exif.tobytes(), icc_profile=srgb)
    return [
        photo,
        photo[: len(photo) // 2],  # truncated
        encoded(rgb.convert("CMYK"), "JPEG", icc_profile=b"junk"),
        encoded(rgb.convert("L"), "JPEG", progressive=True),
        encoded(rgb, "MPO", save_all=True, append_images=[rgb]),
        encoded(transparent, "PNG", exif=exif.tobytes(), icc_profile=srgb),
        encoded(palette, "PNG", transparency=0),
        encoded(rgb.convert("I;16"), "PNG"),
        encoded(rgb, "PNG", save_all=True, append_images=[transparent]),  # animated
        encoded(rgb, "WEBP"),
        encoded(transparent, "WEBP", lossless=True),
        encoded(rgb, "WEBP", save_all=True, append_images=[transparent]),  # animated
    ]


def _serve(connection: Connection, cpu_seconds: int) -> None:
    """One request (limits, then bytes), one reply, until EOF."""
    while True:
        try:
            limits = Limits(**json.loads(connection.recv_bytes()))
            data = connection.recv_bytes()
        except EOFError:
            return  # the web process closed the pipe or went away
        _allow_cpu(cpu_seconds)
        connection.send_bytes(_answer(data, limits))
        del data  # do not hold the last upload while idle


def _lower_limit(kind: int, value: int) -> None:
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _allow_cpu(seconds: int) -> None:
    """Give the next task ``seconds`` of CPU (less under a second); then the kernel sends SIGXCPU.

    RLIMIT_CPU counts the whole life of the process, so each task's budget goes
    on top of what the worker has used so far (the hard limit stays open).
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime)  # the limit is in whole seconds
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _answer(data: bytes, limits: Limits) -> bytes:
    Image.MAX_IMAGE_PIXELS = limits.max_pixels  # Pillow's own bomb check, at our cap
    try:
        return pack_decoded(process(data, limits=limits))
    except Rejected as rejected:
        return pack_rejected(rejected)
    except MemoryError:
        return pack_rejected(rejection("too_big_to_decode"))


# --- The messages -------------------------------------------------------------


def request(limits: Limits) -> bytes:
    """What precedes the bytes of each upload on the pipe."""
    return json.dumps(asdict(limits)).encode()


def pack(header: dict, *payload: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return b"".join([struct.pack(">I", len(encoded)), encoded, *payload])


def pack_rejected(rejected: Rejected) -> bytes:
    return pack({"rejected": [rejected.code, rejected.message, rejected.status]})


def pack_decoded(decoded: Decoded) -> bytes:
    renditions = (decoded.master, decoded.display, decoded.thumb)
    header = {
        "format": decoded.format,
        "pixels_sha256": decoded.pixels_sha256,
        "phash": decoded.phash,
        "source_format": decoded.source_format,
        "renditions": [[r.width, r.height, len(r.data)] for r in renditions],
    }
    return pack(header, *(r.data for r in renditions))


def unpack(message: bytes) -> Decoded | Rejected:
    """A worker's reply; raises ValueError for anything that is not a well-formed one."""
    try:
        (length,) = struct.unpack_from(">I", message)
        header = json.loads(message[4 : 4 + length])
        if "rejected" in header:
            code, text, status = header["rejected"]
            return Rejected(str(code), str(text), int(status))
        body = memoryview(message)[4 + length :]
        renditions, offset = [], 0
        for width, height, size in header["renditions"]:
            renditions.append(
                Rendition(bytes(body[offset : offset + size]), int(width), int(height))
            )
            offset += int(size)
        if offset != len(body) or len(renditions) != 3 or header["format"] not in ("jpeg", "png"):
            raise ValueError("the reply does not add up")
        return Decoded(
            format=header["format"],
            master=renditions[0],
            display=renditions[1],
            thumb=renditions[2],
            pixels_sha256=str(header["pixels_sha256"]),
            phash=int(header["phash"]),
            source_format=str(header["source_format"]),
        )
    except (struct.error, KeyError, TypeError) as error:
        raise ValueError(f"malformed reply from the decoding worker: {error}") from error
