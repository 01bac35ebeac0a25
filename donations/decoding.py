"""Decode uploaded image bytes safely, in a worker process that may die for them.

Uploaded bytes are hostile until proven otherwise. ``decode()`` hands them to a
long-lived worker process (donations.worker) with memory and CPU limits and
none of the web process's secrets, so that a decoder crash, a hang or a memory
blow-up costs that process and one upload, never the web process. The worker
runs donations.imaging's ``process()``: the format sniffing, header checks,
full decode, normalisation, renditions and hashes.

Callers need only this module: it also names what ``decode()`` returns and
raises, and the helpers that compare its perceptual hashes.

Settings are read when used, never at import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe

from django.conf import settings
from django.core.cache import cache

from . import worker
from .imaging import (
    Decoded,
    Limits,
    Rejected,
    Rendition,
    check_before_decoding,
    phash_bands,
    phash_distance,
    rejection,
)

__all__ = [
    "Decoded",
    "Rejected",
    "Rendition",
    "decode",
    "phash_bands",
    "phash_distance",
    "shared_budget",
    "shutdown",
    "warm_up",
    "worker_pids",
]

logger = logging.getLogger(__name__)


# --- The worker process -----------------------------------------------------
#
# One long-lived process per web process (donations.worker), started with
# `python -I` and an empty environment, so that none of the web process's
# secrets, threads, locks or connections reach the process that parses hostile
# bytes. It keeps Pillow warm between uploads; a new one takes about 0.1 s.

_START_SECONDS = 10  # a worker that is not ready by then will not be


@dataclass(frozen=True)
class _WorkerConfig:
    memory_mb: int
    cpu_seconds: int
    require_sandbox: bool
    timeout: float
    max_tasks: int

    @classmethod
    def from_settings(cls) -> _WorkerConfig:
        return cls(
            memory_mb=int(getattr(settings, "IMAGE_WORKER_MEMORY_MB", 2048)),
            cpu_seconds=int(getattr(settings, "IMAGE_WORKER_CPU_SECONDS", 30)),
            require_sandbox=bool(getattr(settings, "IMAGE_WORKER_REQUIRE_SECCOMP", True)),
            timeout=float(getattr(settings, "IMAGE_WORKER_TIMEOUT", 15)),
            max_tasks=int(getattr(settings, "IMAGE_WORKER_MAX_TASKS", 500)),
        )

    @property
    def at_start(self) -> tuple[int, int, bool]:
        """What the worker is started with; a change needs a new worker."""
        return (self.memory_mb, self.cpu_seconds, self.require_sandbox)

    def command(self, connection_fd: int, probe: str | None = None) -> list[str]:
        return worker.command(
            connection_fd,
            self.memory_mb,
            self.cpu_seconds,
            require_sandbox=self.require_sandbox,
            probe=probe,
        )


class _WorkerLost(Exception):
    """The worker died, closed the pipe or sent nonsense."""


class _WorkerTimedOut(Exception):
    """The worker did not answer in time."""


def _start(config: _WorkerConfig, probe: str | None = None) -> tuple[subprocess.Popen, Connection]:
    """A new worker process, and our end of its pipe."""
    ours, theirs = Pipe()
    try:
        process = subprocess.Popen(
            config.command(theirs.fileno(), probe),
            env={},
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # stderr stays: a crash's last words go to our log
            cwd="/",
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours


class _Worker:
    """One decoding process and our end of the pipe to it."""

    def __init__(self, config: _WorkerConfig):
        self.process, self.connection = _start(config)
        self.pid: int = self.process.pid
        self.at_start = config.at_start
        self.tasks = 0
        try:
            hello = (
                self.connection.recv_bytes(4096) if self.connection.poll(_START_SECONDS) else b""
            )
            ready = json.loads(hello) if hello else {"error": "it did not start in time"}
        except (EOFError, OSError, ValueError):
            ready = {"error": f"it exited (code {self.process.poll()})"}
        if not isinstance(ready, dict) or not ready.get("ready"):
            self.stop(kill=True)
            raise _WorkerLost(str(ready.get("error") if isinstance(ready, dict) else ready))
        if ready.get("unsandboxed"):
            logger.warning(
                "the decoding worker runs WITHOUT its seccomp filter "
                "(IMAGE_WORKER_REQUIRE_SECCOMP is off): %s",
                ready["unsandboxed"],
            )

    def ask(self, data: bytes, limits: Limits, timeout: float) -> Decoded | Rejected:
        self.tasks += 1
        try:
            self.connection.send_bytes(worker.request(limits))
            self.connection.send_bytes(data)
            if not self.connection.poll(timeout):
                raise _WorkerTimedOut
            return worker.unpack(self.connection.recv_bytes(worker.MAX_REPLY_BYTES))
        except (EOFError, OSError, ValueError) as error:
            raise _WorkerLost(str(error)) from error

    def stop(self, *, kill: bool) -> int | None:
        """End the process (closing the pipe lets it exit by itself); return its exit code."""
        self.connection.close()
        if kill:
            self.process.kill()
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class _Turns:
    """A lock taken in the order it was asked for (threading.Lock promises no order).

    A request with many files asks again after each one, behind whoever came
    meanwhile: an upload never waits for more than one file of each request ahead.
    """

    def __init__(self):
        self._mutex = threading.Lock()
        self._queue: deque[threading.Lock] = deque()
        self._taken = False

    def acquire(self, timeout: float | None = None) -> bool:
        with self._mutex:
            if not self._taken:
                self._taken = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
        if turn.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            return True  # release() handed it over to us
        with self._mutex:
            if turn in self._queue:
                self._queue.remove(turn)
                return False
        return True  # handed over just as we gave up: ours all the same

    def release(self) -> None:
        with self._mutex:
            if self._queue:
                self._queue.popleft().release()  # still taken, by the next in line
            else:
                self._taken = False

    def waiting(self) -> int:
        return len(self._queue)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


@dataclass
class _Budget:
    """The time one request may spend waiting for and using the worker, shared by its files."""

    seconds: float
    spent: float = 0.0

    @classmethod
    def from_settings(cls) -> _Budget:
        return cls(float(getattr(settings, "IMAGE_REQUEST_DECODE_SECONDS", 30)))

    @property
    def left(self) -> float:
        return self.seconds - self.spent


_budget: ContextVar[_Budget | None] = ContextVar("decoding_budget", default=None)


class _Pool:
    """The one worker of this web process, shared by its threads in turns.

    A file holds the worker for at most IMAGE_WORKER_TIMEOUT seconds, and a
    request for at most its budget in all (IMAGE_REQUEST_DECODE_SECONDS, which
    counts waiting too): what is left of a request once it is spent is refused
    as "deferred", and the file that would run past it is stopped there.
    """

    def __init__(self):
        self._turns = _Turns()
        self._worker: _Worker | None = None

    def decode(self, data: bytes, limits: Limits, budget: _Budget) -> Decoded:
        config = _WorkerConfig.from_settings()
        started = time.monotonic()
        try:
            reply = self._decode_within(data, limits, config, budget.left)
        finally:
            budget.spent += time.monotonic() - started
        if isinstance(reply, Rejected):
            raise reply
        return reply

    def _decode_within(
        self, data: bytes, limits: Limits, config: _WorkerConfig, allowance: float
    ) -> Decoded | Rejected:
        if allowance <= 0:
            return rejection("deferred", status=503)
        started = time.monotonic()
        if not self._turns.acquire(timeout=min(config.timeout, allowance)):
            # Other uploads held the worker as long as one may wait, or for the rest of ours.
            busy = allowance > config.timeout
            return rejection("unavailable" if busy else "deferred", status=503)
        try:
            left = allowance - (time.monotonic() - started)
            return self._ask(data, limits, config, min(config.timeout, left))
        finally:
            self._turns.release()

    def _ask(
        self, data: bytes, limits: Limits, config: _WorkerConfig, timeout: float
    ) -> Decoded | Rejected:
        worker = self._current(config)
        try:
            reply = worker.ask(data, limits, timeout)
        except _WorkerTimedOut:
            self._discard(kill=True)
            if timeout < config.timeout:
                return rejection("deferred", status=503)  # stopped by the request's budget
            return rejection("timeout")
        except _WorkerLost:
            exit_code = self._discard(kill=False)
            if exit_code == -signal.SIGSYS:
                logger.error(
                    "the sandbox killed the decoding worker: a system call it may not make "
                    "(an attack, or a code path the worker did not load before its filter)"
                )
            else:
                logger.warning("the decoding worker died (exit code %s)", exit_code)
            # SIGXCPU: the kernel stopped the worker at its CPU limit.
            return rejection("timeout" if exit_code == -signal.SIGXCPU else "decoder_crashed")
        if worker.tasks >= config.max_tasks:
            self._discard(kill=False)  # a fresh process bounds any slow leak
        return reply

    def _current(self, config: _WorkerConfig) -> _Worker:
        """The running worker, started (or restarted with new limits) when needed."""
        if self._worker is not None and self._worker.at_start != config.at_start:
            self._discard(kill=False)
        if self._worker is None:
            try:
                self._worker = _Worker(config)
            except (_WorkerLost, OSError, EOFError) as error:
                logger.error("cannot start the decoding worker: %s", error)  # and so every upload
                raise rejection("unavailable", status=503) from error
        return self._worker

    def _discard(self, *, kill: bool) -> int | None:
        worker, self._worker = self._worker, None
        return worker.stop(kill=kill) if worker is not None else None

    def warm_up(self) -> None:
        with self._turns:
            self._current(_WorkerConfig.from_settings())

    def shutdown(self) -> None:
        with self._turns:
            self._discard(kill=False)

    def pids(self) -> list[int]:
        # No lock: tests ask while another thread is decoding.
        worker = self._worker
        return [worker.pid] if worker is not None else []

    def forget_after_fork(self) -> None:
        # A forked child (a gunicorn worker forked from a master that decoded)
        # must not share its parent's pipe: it starts a worker of its own.
        self._turns = _Turns()
        self._worker = None


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.forget_after_fork)


def decode(data: bytes) -> Decoded:
    """Check, decode and re-encode an upload in the isolated worker.

    Raises Rejected for every file we cannot or will not accept, including the
    ones that crash, hang or exhaust the worker (which is then replaced), and
    with status 503 ("unavailable") when no worker answers for a reason of ours.
    Bytes that took too long are remembered, and refused at once when they come
    back (IMAGE_TIMEOUT_MEMORY_HOURS).
    """
    limits = Limits.from_settings()
    # Byte comparisons and a walk over JPEG markers: refusing a PDF, or a JPEG of
    # 10,000 scans, needs no worker.
    check_before_decoding(data, limits)
    too_slow = _too_slow_key(data)
    if cache.get(too_slow):
        logger.info("refused without decoding: these bytes took too long before")
        raise rejection("timeout")
    try:
        return _pool.decode(data, limits, _budget.get() or _Budget.from_settings())
    except Rejected as rejected:
        hours = float(getattr(settings, "IMAGE_TIMEOUT_MEMORY_HOURS", 24))
        if rejected.code == "timeout" and hours > 0:
            cache.set(too_slow, True, timeout=hours * 3600)
        raise


def _too_slow_key(data: bytes) -> str:
    return f"decoding:too-slow:{hashlib.sha256(data).hexdigest()}"


@contextmanager
def shared_budget() -> Iterator[None]:
    """Let the decode() calls inside share one request's decoding time.

    Whatever number of files a request carries, it waits for and uses the
    worker for IMAGE_REQUEST_DECODE_SECONDS at most; its files left after that
    are refused as "deferred" (503: send them again). Outside of this, every
    decode() has that time to itself.
    """
    token = _budget.set(_Budget.from_settings())
    try:
        yield
    finally:
        _budget.reset(token)


def warm_up() -> None:
    """Start the worker now, so the first upload does not wait for it."""
    _pool.warm_up()


def shutdown() -> None:
    """Stop the worker; the next decode() starts a new one."""
    _pool.shutdown()


def worker_pids() -> list[int]:
    """Process ids of the running worker (none before the first use)."""
    return _pool.pids()


def _probe(name: str) -> dict:
    """Start a worker that tries ``name`` (donations.sandbox) in its sandbox; for tests only.

    Its report, or ``{"exit": code}`` when it answered nothing (the filter killed it).
    """
    config = _WorkerConfig.from_settings()
    process, connection = _start(config, probe=name)
    try:
        report = connection.recv_bytes(4096) if connection.poll(_START_SECONDS) else b""
    except (EOFError, OSError):
        report = b""
    finally:
        connection.close()
    try:
        code = process.wait(timeout=_START_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return json.loads(report) if report else {"exit": code}
