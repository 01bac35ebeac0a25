"""Every installed package is locked with its hashes: requirements.lock (the site) and
requirements-dev.lock (the site and its tests), written by tools/lock.sh from the top-level
pins in pyproject.toml and installed by tools/bootstrap.sh with `pip --require-hashes`."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {
    "runtime": ROOT / "requirements.lock",
    "dev": ROOT / "requirements-dev.lock",
    "demo": ROOT / "requirements-demo.lock",
}
# What `python -m venv` puts into every virtualenv; no package needs them at run time.
VENV_TOOLS = {"pip", "setuptools"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) for each requirement of a lock file."""
    entries = {}
    text = lock.read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1]):
        first = block.split("\\", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", first)
        assert match, f"{lock.name}: not pinned with ==: {first!r}"
        entries[normalize(match[1])] = (
            match[2],
            re.findall(r"--hash=sha256:([0-9a-f]{64})", block),
        )
    return entries


def top_level() -> dict[str, dict[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"runtime": project["dependencies"]}
    groups["dev"] = project["dependencies"] + project["optional-dependencies"]["dev"]
    groups["demo"] = project["dependencies"] + project["optional-dependencies"]["demo"]
    pins = {}
    for group, requirements in groups.items():
        pins[group] = {}
        for requirement in requirements:
            name, _, version = requirement.partition("==")
            assert version, f"pyproject.toml: pin {requirement!r} with =="
            name = name.partition("[")[0]  # moto[server]: the extra's packages are locked too
            pins[group][normalize(name)] = version.strip()
    return pins


@pytest.mark.parametrize("which", LOCKS)
def test_every_locked_package_is_pinned_with_hashes(which):
    entries = locked(LOCKS[which])
    assert len(entries) > len(top_level()[which]), "the lock holds the transitive packages too"
    for name, (_version, hashes) in entries.items():
        assert hashes, f"{name} has no hash"


@pytest.mark.parametrize("which", LOCKS)
def test_the_locks_follow_the_pins_in_pyproject(which):
    entries = locked(LOCKS[which])
    for name, version in top_level()[which].items():
        assert name in entries, f"{name} is missing from {LOCKS[which].name}: run `make lock`"
        assert entries[name][0] == version, f"{name}: pyproject says {version}: run `make lock`"


@pytest.mark.parametrize("which", ["dev", "demo"])
def test_the_dev_and_demo_locks_keep_the_sites_versions(which):
    runtime, other = locked(LOCKS["runtime"]), locked(LOCKS[which])
    assert {name: version for name, (version, _) in runtime.items()} == {
        name: other[name][0] for name in runtime
    }


def test_the_demo_lock_keeps_the_dev_locks_versions():
    dev, demo = locked(LOCKS["dev"]), locked(LOCKS["demo"])
    assert {name: version for name, (version, _) in demo.items()} == {
        name: dev[name][0] for name in demo
    }


CLIENT_LOCK = ROOT / "requirements-client.lock"


def test_the_original_client_is_locked_alone_with_its_hash():
    # Installed --no-deps beside the dev lock: everything it needs must be in the dev lock.
    assert {name: version for name, (version, _) in locked(CLIENT_LOCK).items()} == {
        "pyimagemonkey": "0.1"
    }
    assert locked(CLIENT_LOCK)["pyimagemonkey"][1]
    assert "requests" in locked(LOCKS["dev"])


def test_the_lock_covers_every_installed_distribution():
    # This suite runs in the virtualenv that `make test` installed from requirements-dev.lock
    # and requirements-client.lock.
    entries = locked(LOCKS["dev"]) | locked(CLIENT_LOCK)
    installed = {
        normalize(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    unlocked = {
        name: version
        for name, version in installed.items()
        if name not in VENV_TOOLS and entries.get(name, (None,))[0] != version
    }
    assert not unlocked, (
        f"installed but not locked at that version: {unlocked} "
        "(a virtualenv from before the lock? `rm -rf .venv` and run `make test-setup`)"
    )


def test_bootstrap_installs_only_hashed_files():
    bootstrap = (ROOT / "tools" / "bootstrap.sh").read_text()
    assert 'locks=("$lock")' in bootstrap and "flags=(--require-hashes)" in bootstrap
    assert re.search(r'pip install [^\n]*"\$\{flags\[@\]\}" -r "\$each"', bootstrap)
    assert "lock=requirements.lock" in bootstrap and "lock=requirements-dev.lock" in bootstrap
    assert "pyproject.toml" not in re.sub(r"^#.*$", "", bootstrap, flags=re.MULTILINE)
    # The server installs and updates its packages through bootstrap.sh, from the lock.
    for script in ("install.sh", "update.sh"):
        assert '"$APP/tools/bootstrap.sh"' in (ROOT / "deploy" / script).read_text(), script
