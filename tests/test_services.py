"""tools/services.sh, the private PostgreSQL and Redis of `make run` and `make test`, in a
checkout that PostgreSQL's user cannot enter: root's home or a `mktemp -d` folder (mode 700),
and the password that keeps other local users out of that PostgreSQL.

Runs a copy of the script in a folder of its own, so it never touches this checkout's
servers; it needs root (as root, PostgreSQL runs as the `postgres` system user).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
PGBIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: PostgreSQL runs as postgres"),
    pytest.mark.skipif(not PGBIN, reason="PostgreSQL's server binaries are not installed"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is missing"),
]


def services(checkout: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DATA_DIR"}
    }
    return subprocess.run(
        [str(checkout / "tools" / "services.sh"), *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def connect(socket_folder: str, password: str):
    return psycopg2.connect(
        host=socket_folder, user="imagemonkey", password=password, dbname="imagemonkey"
    )


def assert_connects(socket_folder: str, password: str) -> None:
    connection = connect(socket_folder, password)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        assert cursor.fetchone() == ("imagemonkey", "imagemonkey")


def assert_refused_without_password(socket_folder: str) -> None:
    # The owner of the checkout (here root) without the password...
    with pytest.raises(psycopg2.OperationalError, match="password"):
        connect(socket_folder, "").close()
    # ...and another local user, even were the socket's folders opened to everyone.
    run = Path(socket_folder).resolve()
    folders = [run, run.parent]
    modes = {folder: stat.S_IMODE(folder.stat().st_mode) for folder in folders}
    socket_file = run / ".s.PGSQL.5432"
    socket_mode = stat.S_IMODE(socket_file.stat().st_mode)
    try:
        for folder in folders:
            folder.chmod(0o755)
        socket_file.chmod(0o777)
        psql = f"{PGBIN[-1].parent}/psql"
        other = subprocess.run(
            ["runuser", "-u", "nobody", "--", psql, "-w", "-h", str(run),
             "-U", "imagemonkey", "-d", "imagemonkey", "-c", "SELECT 1"],
            cwd="/", capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
        )  # fmt: skip
    finally:
        socket_file.chmod(socket_mode)
        for folder, mode in modes.items():
            folder.chmod(mode)
    assert other.returncode != 0, other.stdout
    assert "password" in other.stderr, other.stderr


def test_it_starts_postgresql_in_a_folder_postgres_cannot_enter():
    folder = Path(tempfile.mkdtemp())  # mode 700, like `mktemp -d`
    checkout = folder / "clone"
    (checkout / "tools").mkdir(parents=True)
    shutil.copy2(ROOT / "tools" / "services.sh", checkout / "tools" / "services.sh")
    var = checkout / "var"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    cluster = None
    try:
        started = services(checkout, "start", "imagemonkey")
        assert started.returncode == 0, started.stdout + started.stderr
        assert (var / "pg").is_symlink()
        cluster = Path(os.readlink(var / "pg"))
        assert cluster.parent == Path("/var/tmp")
        # Only its user (and root) may enter it.
        assert stat.S_IMODE(cluster.stat().st_mode) == 0o700
        assert cluster.owner() == "postgres"

        # The app connects as settings.py does: through DATA_DIR/pg/run, the link, with the
        # password beside it.
        socket_folder = str(var / "pg" / "run")
        password_file = var / "pg" / "password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert_connects(socket_folder, password_file.read_text().strip())
        assert_refused_without_password(socket_folder)
        pid = (cluster / "data" / "postmaster.pid").read_text().split()[0]

        again = services(checkout, "start", "imagemonkey")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "Creating" not in again.stdout and "Starting PostgreSQL" not in again.stdout
        assert (cluster / "data" / "postmaster.pid").read_text().split()[0] == pid

        # A cluster made when it still trusted every local user asks for a password once
        # started again, without a restart.
        hba = cluster / "data" / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
        subprocess.run(
            ["runuser", "-u", "postgres", "--", f"{PGBIN[-1].parent}/pg_ctl", "-D",
             str(cluster / "data"), "reload"],
            cwd="/", check=True, capture_output=True,
        )  # fmt: skip
        password_file.unlink()
        assert_connects(socket_folder, "")  # trusted: anyone who reaches the socket
        migrated = services(checkout, "start", "imagemonkey")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "asks for a password now" in migrated.stdout
        assert_refused_without_password(socket_folder)
        assert_connects(socket_folder, password_file.read_text().strip())
        assert (cluster / "data" / "postmaster.pid").read_text().split()[0] == pid

        stopped = services(checkout, "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not (cluster / "data" / "postmaster.pid").exists()
        assert not (var / "redis" / "redis.sock").exists()
        status = services(checkout, "status")
        assert "PostgreSQL: not running" in status.stdout
        assert "Redis: not running" in status.stdout
    finally:
        services(checkout, "stop")
        if cluster is not None:
            shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
