"""The decoding worker: the one process that parses uploaded bytes, and what it may do.

donations.decoding starts it with ``python -I`` and an empty environment, so
that nothing of the web process reaches it: no SECRET_KEY, DATABASE_URL or
REDIS_URL, no Django settings (it never loads them), no open file but its end
of the pipe (and stdin, stdout and stderr). It applies its limits to itself,
then answers requests on the pipe until the web process closes it.

Both directions carry JSON and raw bytes, never pickles: the web process must
not unpickle what a process that parsed hostile bytes sends. This module
writes the replies and reads them (``unpack``), so the format has one home.

Nothing here reads Django settings: everything the worker needs comes on its
command line (its process limits) or with each request (the Limits).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
import warnings
from dataclasses import asdict
from multiprocessing.connection import Connection

from PIL import Image, ImageFile

from .imaging import Decoded, Limits, Rejected, Rendition, process, rejection

READY = b"ready"
MAX_REPLY_BYTES = 512 * 1024 * 1024


def command(connection_fd: int, memory_mb: int, cpu_seconds: int) -> list[str]:
    """The command line that starts a worker on ``connection_fd`` (which it must inherit).

    ``-I`` (isolated mode) ignores PYTHON* variables, the user's site-packages
    and the current folder; the folder that holds this app comes on the line.
    """
    code_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bootstrap = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from donations.worker import main; main(sys.argv[2:])"
    )
    return [
        sys.executable,
        "-I",
        "-c",
        bootstrap,
        code_root,
        str(connection_fd),
        str(memory_mb),
        str(cpu_seconds),
    ]


def main(argv: list[str]) -> None:
    """The worker process: ``<connection fd> <memory MB> <CPU seconds per task>``."""
    connection_fd, memory_mb, cpu_seconds = (int(value) for value in argv[:3])
    connection = Connection(connection_fd)
    # Started with none; Python itself may have set LC_CTYPE (PEP 538).
    os.environ.clear()
    _lower_limit(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    _lower_limit(resource.RLIMIT_CORE, 0)  # a crash must not write the upload to disk
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings.simplefilter("ignore")  # hostile files would fill the logs with warnings
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    connection.send_bytes(READY)
    _serve(connection, cpu_seconds)


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
