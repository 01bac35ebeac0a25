"""What the decoding worker may still do once it serves: the no_new_privs bit and a seccomp filter.

The worker (donations.worker) gets uploads on a pipe and answers on the same
pipe; it needs memory, time and its own limits, and nothing else. So once it is
ready, it forbids itself everything else, in the kernel:

- ``no_new_privs``: nothing it could ever run would gain privileges (setuid
  binaries, file capabilities);
- a seccomp filter that allows a short list of system calls (reading its pipe,
  writing its pipe and stderr, memory never made executable, its clock, its
  limits, signals to itself, exit) and refuses every other with EPERM. The
  calls an intruder wants first kill the process on the spot, so that an
  attempt never goes unnoticed: sockets and the network, opening any file,
  running a program, new processes and threads, signalling, tracing or reading
  other processes, io_uring (which would bypass the filter), kernel keyrings,
  BPF.

Installing the filter needs libseccomp (Debian: libseccomp2) through pyseccomp.
Without it ``enter()`` raises SandboxUnavailable, and the worker refuses to
serve unless told that it may run unsandboxed (IMAGE_WORKER_REQUIRE_SECCOMP=0).

The filter must be the last thing the worker sets up: after it, opening a file
kills the process, and that includes importing a module, so the worker runs its
whole pipeline once before (donations.worker).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import sys

PR_SET_NO_NEW_PRIVS = 38
PROT_EXEC = 0x4

ALLOWED = (
    "brk",
    "munmap",
    "mremap",
    "madvise",
    "futex",
    "close",
    "getrusage",
    "getrlimit",
    "setrlimit",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getpid",
    "gettid",
    "getrandom",
    "sched_yield",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "restart_syscall",
    "exit",
    "exit_group",
)
KILLED = (
    # the network, and file descriptors from elsewhere
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "pidfd_getfd",
    # files
    "open",
    "openat",
    "openat2",
    "creat",
    "open_by_handle_at",
    # programs, processes, threads
    "execve",
    "execveat",
    "fork",
    "vfork",
    "clone",
    "clone3",
    # other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kill",
    "tkill",
    "pidfd_send_signal",
    # around the filter, and into the kernel
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
)


class SandboxUnavailable(Exception):
    """The kernel or the system cannot give this process its filter."""


def enter(connection_fd: int) -> None:
    """Forbid this process everything but serving on ``connection_fd``; for the rest of its life."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxUnavailable(f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
    try:
        import pyseccomp as seccomp  # loads libseccomp.so.2 when imported
    except (ImportError, OSError, RuntimeError) as error:
        raise SandboxUnavailable(f"libseccomp cannot be loaded: {error}") from error
    try:
        _filter(seccomp, connection_fd).load()
    except OSError as error:
        raise SandboxUnavailable(f"the seccomp filter cannot be installed: {error}") from error


def _filter(seccomp, connection_fd: int):
    rules = seccomp.SyscallFilter(seccomp.ERRNO(errno.EPERM))
    allow, kill, Arg = seccomp.ALLOW, seccomp.KILL_PROCESS, seccomp.Arg
    for name in ALLOWED:
        _add(seccomp, rules, allow, name)
    _add(seccomp, rules, allow, "read", Arg(0, seccomp.EQ, connection_fd))
    for fd in (connection_fd, 1, 2):  # the pipe, stdout (/dev/null) and stderr
        _add(seccomp, rules, allow, "write", Arg(0, seccomp.EQ, fd))
    for name in ("mmap", "mprotect"):  # memory, never executable: no code of our own making
        _add(seccomp, rules, allow, name, Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
    _add(seccomp, rules, allow, "prlimit64", Arg(0, seccomp.EQ, 0))  # our own limits
    _add(seccomp, rules, allow, "tgkill", Arg(0, seccomp.EQ, os.getpid()))  # abort()
    _add(seccomp, rules, kill, "tgkill", Arg(0, seccomp.NE, os.getpid()))
    for name in KILLED:
        _add(seccomp, rules, kill, name)
    return rules


def _add(seccomp, rules, action: int, name: str, *conditions) -> None:
    if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) < 0:
        return  # a call this architecture does not have (libseccomp knows them all)
    rules.add_rule(action, name, *conditions)


# --- Probes, for tests only ---------------------------------------------------
#
# A worker started with ``--probe NAME`` (on its command line: nothing a web
# request sends can choose one) enters the sandbox exactly as when it serves,
# then does one thing and reports what happened instead of serving. A probe the
# filter kills reports nothing: the test reads the exit signal.


def probe(name: str) -> bytes:
    try:
        result = _PROBES[name]()
    except OSError as error:
        return json.dumps({"refused": errno.errorcode.get(error.errno, str(error.errno))}).encode()
    return json.dumps({"done": result}).encode()


def _state() -> dict:
    settings = sys.modules.get("django.conf")
    return {
        "environ": dict(os.environ),
        "settings_loaded": any(name.endswith(".settings") for name in sys.modules),
        "django_configured": bool(settings and settings.settings.configured),
    }


def _read_a_file() -> str:
    with open("/etc/passwd", "rb") as file:
        return file.read(16).decode(errors="replace")


def _write_a_file() -> str:
    with open(os.devnull, "wb") as file:
        file.write(b"x")
    return "written"


_PROBES = {
    "state": _state,
    "socket": lambda: str(socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
    "read_file": _read_a_file,
    "write_file": _write_a_file,
    "exec": lambda: os.execv("/bin/true", ["/bin/true"]),  # noqa: S606 - what must be refused
    "fork": os.fork,
    "signal_another_process": lambda: os.kill(1, 0),  # signal 0: only asks whether it may
}
