"""A fresh Debian 12 host for deploy/install.sh, booted with systemd-nspawn.

The root file system is made by debootstrap once and kept under var/fresh-host/ (a
minimal Debian with systemd, as a cloud image has). Each run copies it, fetches what
install.sh will need while the copy still has the machine's network (Debian packages into
its apt cache, Python wheels into a wheelhouse), then boots it with systemd as PID 1 in
its own network namespace (`--private-network`): nothing inside can reach the network, and
the firewall rules install.sh loads apply to that namespace only, never to this machine.

Commands run inside through nsenter into the container's namespaces.

Several hosts (install.sh --role db, --role app) get a `Link` instead: two network
namespaces made with `ip netns` and joined by a veth pair with private addresses, so the
hosts reach each other and still nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DATA_DIR") or ROOT / "var") / "fresh-host"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get("DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
WHEELS_INSIDE = "/var/cache/imagemonkey-wheels"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a small cloud image of Debian 12 has beyond debootstrap's minimal base.
BASE_PACKAGES = "systemd,systemd-sysv,dbus,ca-certificates,procps,iproute2,less"


def host_tool(command: str, package: str) -> None:
    if shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def base_root() -> Path:
    """The cached debootstrap of Debian 12, made on first use (about 90 s)."""
    base = CACHE / "bookworm"
    if (base / ".complete").exists():
        return base
    host_tool("debootstrap", "debootstrap")
    partial = CACHE / "bookworm.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm",
         str(partial), MIRROR],
        check=True, capture_output=True, timeout=1200,
    )  # fmt: skip
    (partial / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} bookworm main\n"
        f"deb {MIRROR} bookworm-updates main\n"
        f"deb {SECURITY_MIRROR} bookworm-security main\n"
    )
    (partial / ".complete").write_text("")
    partial.rename(base)
    return base


def wheelhouse() -> Path:
    """The wheels of requirements.lock, hash-checked, for an install without the network."""
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "pip", "download", "-q",
         "--disable-pip-version-check", "--require-hashes", "--only-binary=:all:",
         "-r", str(ROOT / "requirements.lock"), "-d", str(wheels)],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    return wheels


def install_packages(role: str = "all") -> list[str]:
    out = subprocess.run(
        ["bash", str(ROOT / "deploy/install.sh"), "--role", role, "--print-packages"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.split()


class Host:
    """One booted container: `run` executes a command inside, as root."""

    def __init__(self, folder: Path, name: str = "imhost", netns: str | None = None):
        self.folder = folder
        self.name = name
        self.netns = netns  # a namespace of a Link; without one, a private network
        self.root = folder / "root"
        self.source = folder / "src"
        self.log = folder / "console.log"
        self.apt_cache = CACHE / "apt-archives"
        self.process: subprocess.Popen | None = None
        self.leader = 0

    # --- making it ---------------------------------------------------------------------
    def prepare(self, role: str = "all") -> None:
        host_tool("systemd-nspawn", "systemd-container")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(base_root()), str(self.root)], check=True)
        (self.root / "etc/hostname").write_text(self.name + "\n")
        # The code as committed, the way a person clones it onto a new server.
        subprocess.run(
            ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(self.source)], check=True
        )
        self.wheels = wheelhouse()
        self.apt_cache.mkdir(parents=True, exist_ok=True)
        # With the machine's network (no --private-network here, and no boot): install git,
        # as the person who clones ImageMonkey onto the host does, and fetch the Debian
        # packages install.sh installs into the container's apt cache.
        self.nspawn_once(
            "sh", "-c",
            "apt-get update -q && apt-get install -y -q --no-install-recommends git"
            " && apt-get install -y -q --download-only --no-install-recommends "
            + " ".join(install_packages(role)),
        )  # fmt: skip

    def nspawn_once(self, *command: str) -> None:
        result = subprocess.run(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", str(self.root),
             f"--bind={self.apt_cache}:/var/cache/apt/archives",
             "--setenv=DEBIAN_FRONTEND=noninteractive", *command],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{command} failed:\n{result.stdout}\n{result.stderr}")

    # --- running it --------------------------------------------------------------------
    def boot(self, starting: Callable[[], None] | None = None) -> None:
        """Boot, and wait until systemd is done; `starting` is called while it is at it."""
        console = self.log.open("a")
        network = f"--network-namespace-path=/run/netns/{self.netns}" if self.netns else None
        self.process = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
             network or "--private-network", f"--machine={self.name}", "-D", str(self.root),
             f"--bind={self.apt_cache}:/var/cache/apt/archives",
             f"--bind-ro={self.wheels}:{WHEELS_INSIDE}", f"--bind-ro={self.source}:/src",
             "--console=pipe"],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the container exited: {self.log.read_text()[-3000:]}")
            children = subprocess.run(
                ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
            ).stdout.split()
            if children:
                self.leader = int(children[0])
                if starting:
                    starting()
                    starting = None
                state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the container did not finish booting: {self.log.read_text()[-3000:]}")

    def run(
        self, *command: str, check: bool = True, timeout: float = 300, input: str | None = None,
        env: dict | None = None,
    ) -> subprocess.CompletedProcess:  # fmt: skip
        environment = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i",
             *(f"{key}={value}" for key, value in environment.items()), *command],
            capture_output=True, text=True, timeout=timeout, input=input,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def reboot(self, starting: Callable[[], None] | None = None) -> None:
        """`systemctl reboot` inside: the container stops, and boots again."""
        self.run("systemctl", "reboot", check=False)
        assert self.process is not None
        self.process.wait(timeout=120)
        self.boot(starting)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.run("systemctl", "poweroff", check=False)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def commit(self, message: str, path: str, text: str) -> str:
        """A new commit in the source the host was installed from."""
        target = self.source / path
        target.write_text(text)
        git = ["git", "-C", str(self.source), "-c", "user.name=Test",
               "-c", "user.email=test@example.org"]  # fmt: skip
        subprocess.run([*git, "commit", "-q", "-a", "-m", message], check=True)
        return subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()


class Link:
    """Two network namespaces joined by a veth pair: a private network of two hosts.

    `create` makes them (named after this process, so that runs side by side do not
    meet), `address` gives one side an address (`unaddress` takes it away), `destroy`
    removes both namespaces, and the veth pair with them.
    """

    def __init__(self, left: str, right: str):
        tag = os.getpid()
        self.left, self.right = f"im-{left}-{tag}", f"im-{right}-{tag}"
        self.devices = {
            self.left: f"im{left[:3]}{tag}"[:15],
            self.right: f"im{right[:3]}{tag}"[:15],
        }

    def create(self) -> None:
        self.destroy()
        for namespace in (self.left, self.right):
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        ip("link", "add", self.devices[self.left], "netns", self.left,
           "type", "veth", "peer", "name", self.devices[self.right], "netns", self.right)  # fmt: skip
        for namespace, device in self.devices.items():
            ip("-n", namespace, "link", "set", device, "up")

    def address(self, namespace: str, cidr: str) -> None:
        ip("-n", namespace, "address", "add", cidr, "dev", self.devices[namespace])

    def unaddress(self, namespace: str, cidr: str) -> None:
        ip("-n", namespace, "address", "delete", cidr, "dev", self.devices[namespace])

    def destroy(self) -> None:
        for namespace in (self.left, self.right):
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def ip(*arguments: str) -> None:
    subprocess.run(["ip", *arguments], check=True, capture_output=True)
