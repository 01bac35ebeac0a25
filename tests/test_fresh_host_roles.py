"""deploy/install.sh --role db and --role app, run for real on two fresh Debian 12 hosts.

`make deploy-test` runs this after tests/test_fresh_host.py. Two containers (tests/fresh_host.py)
share a private network of their own (a `Link`: 10.231.0.1 the database host, 10.231.0.2
the app host) and reach nothing else. The app host has a second address, 10.231.0.3, that
stands for any other machine on the private network: the database host must not let it in.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fresh_host import WHEELS_INSIDE, Host, Link

pytestmark = pytest.mark.skipif(
    os.environ.get("FRESH_HOST") != "1" or os.geteuid() != 0,
    reason="the fresh-host test runs as root through `make deploy-test`",
)

DB_ADDRESS, APP_ADDRESS, STRANGER = "10.231.0.1", "10.231.0.2", "10.231.0.3"
APP = "/home/imagemonkey/app"
ENV_FILE = "/etc/imagemonkey/env"
OFFLINE_PIP = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELS_INSIDE}
PG = "/etc/postgresql/15/main"
DB_CONFIGURATION = [
    f"{PG}/conf.d/imagemonkey.conf",
    f"{PG}/pg_hba.conf",
    "/etc/redis/redis.conf",
    "/etc/redis/imagemonkey.conf",
    "/etc/redis/imagemonkey-network.conf",
    "/etc/systemd/system/postgresql@15-main.service.d/imagemonkey.conf",
    "/etc/systemd/system/redis-server.service.d/imagemonkey.conf",
    "/etc/iptables/rules.v4",
    ENV_FILE,
]
APP_CONFIGURATION = [
    "/etc/nginx/sites-available/imagemonkey",
    "/etc/nginx/snippets/imagemonkey-file-headers.conf",
    "/etc/supervisor/conf.d/imagemonkey.conf",
    "/etc/tmpfiles.d/imagemonkey.conf",
    "/etc/iptables/rules.v4",
    ENV_FILE,
]


@pytest.fixture(scope="module")
def link():
    link = Link("db", "app")
    try:
        link.create()
        yield link
    finally:
        link.destroy()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, link):
    kept = os.environ.get("FRESH_HOST_DIR")  # keep the containers' files to look at them
    folder = Path(kept) / "roles" if kept else tmp_path_factory.mktemp("roles")
    db = Host(folder / "db", "imdb", netns=link.left)
    app = Host(folder / "app", "imapp", netns=link.right)
    try:
        link.address(link.left, f"{DB_ADDRESS}/24")
        link.address(link.right, f"{APP_ADDRESS}/24")
        link.address(link.right, f"{STRANGER}/24")
        db.prepare("db")
        app.prepare("app")
        db.boot()
        app.boot()
        db.install = install_db(db)
        db.urls = {
            key: value
            for key, _, value in (
                line.partition("=") for line in db.run("cat", ENV_FILE).stdout.splitlines()
            )
            if key in ("DATABASE_URL", "REDIS_URL")
        }
        app.install = install_app(app, db.urls)
        yield db, app
    finally:
        app.stop()
        db.stop()
        if not kept:
            shutil.rmtree(folder, ignore_errors=True)


def install_db(db: Host) -> str:
    result = db.run(
        "/src/deploy/install.sh", "--role", "db", "--listen", DB_ADDRESS,
        "--app-host", f"{APP_ADDRESS}/32", check=False, timeout=900,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def install_app(app: Host, urls: dict[str, str]) -> str:
    result = app.run(
        "/src/deploy/install.sh", "--role", "app", "--repo", "/src",
        "--database-url", urls["DATABASE_URL"], "--redis-url", urls["REDIS_URL"],
        env=OFFLINE_PIP, check=False, timeout=1500,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def site(app: Host, path: str, *options: str) -> tuple[int, str]:
    """A request to the app through nginx over HTTPS."""
    result = app.run(
        "curl", "-sk", "--max-time", "30", "--resolve", f"{app.name}:443:127.0.0.1",
        "-o", "/tmp/page", "-w", "%{http_code}", *options, f"https://{app.name}{path}",
    )  # fmt: skip
    return int(result.stdout), app.run("cat", "/tmp/page").stdout


def on_db(db: Host, sql: str) -> str:
    return db.run(
        "runuser", "-u", "postgres", "--", "psql", "-d", "imagemonkey", "-tAc", sql
    ).stdout.strip()


CONNECT = """
import socket, sys
source, port = sys.argv[1], int(sys.argv[2])
with socket.socket() as s:
    s.bind((source, 0))
    s.settimeout(3)
    try:
        s.connect((sys.argv[3], port))
    except socket.timeout:
        print("dropped")
    except ConnectionRefusedError:
        print("refused")
    else:
        print("connected")
"""


def connect(app: Host, source: str, port: int) -> str:
    """What becomes of a TCP connection from the app host's `source` address to the db host."""
    return app.run("python3", "-c", CONNECT, source, str(port), DB_ADDRESS).stdout.strip()


def installed(host: Host, package: str) -> bool:
    # dpkg also knows packages it has only heard of (a Suggests): "unknown ok not-installed".
    status = host.run("dpkg-query", "-W", "-f", "${Status}", package, check=False).stdout
    return status == "install ok installed"


def test_the_database_host_prints_what_the_app_hosts_need(hosts):
    db, _ = hosts
    assert "The database host is ready." in db.install
    assert db.urls["DATABASE_URL"].startswith("postgres://imagemonkey:")
    assert db.urls["DATABASE_URL"].endswith(f"@{DB_ADDRESS}:5432/imagemonkey")
    assert db.urls["REDIS_URL"].endswith(f"@{DB_ADDRESS}:6379/0")
    # It serves no pages and runs no app.
    for package in ("nginx", "supervisor"):
        assert not installed(db, package), package


def test_the_hosts_reach_each_other_and_nothing_else(hosts):
    db, app = hosts
    for host, own in ((db, [DB_ADDRESS]), (app, [APP_ADDRESS, STRANGER])):
        addresses = host.run("ip", "-o", "-4", "address", "show", "scope", "global").stdout
        assert sorted(re.findall(r"inet ([\d.]+)/", addresses)) == own
        assert host.run("ip", "route", "show", "default").stdout == ""


def test_the_app_answers_through_nginx_over_https(hosts):
    _, app = hosts
    assert f"ImageMonkey runs at https://{app.name}/" in app.install
    status, page = site(app, "/")
    assert status == 200 and "ImageMonkey" in page
    status, _ = site(app, "/healthz")
    assert status == 200


def test_gunicorn_runs_under_supervisor_on_the_app_host(hosts):
    _, app = hosts
    for _ in range(60):  # STARTING until the program has run for its startsecs
        status = app.run("supervisorctl", "status", check=False).stdout
        if not re.search(r"^imagemonkey\s+STARTING", status, re.MULTILINE):
            break
        time.sleep(1)
    assert re.search(r"^imagemonkey\s+RUNNING", status, re.MULTILINE), status


def test_the_app_host_runs_no_database_and_no_redis(hosts):
    _, app = hosts
    for package in ("postgresql", "postgresql-15", "redis-server"):
        assert not installed(app, package), package
    listening = app.run("ss", "-Htln").stdout
    assert not re.search(r":(5432|6379)\s", listening), listening
    assert app.run("pgrep", "-x", "postgres", check=False).returncode != 0


def donate(app: Host, noise: int, label: str) -> tuple[int, str]:
    """A new picture sent to the app's API, as a donor would."""
    app.run(
        f"{APP}/.venv/bin/python", "-c",
        f"from PIL import Image; Image.effect_noise((320, 240), {noise}).convert('RGB')"
        ".save('/tmp/donated.jpg')",
    )  # fmt: skip
    return site(app, "/v1/donate", "-F", "image=@/tmp/donated.jpg", "-F", f"label={label}")


def test_a_donation_through_the_app_lands_in_the_database_hosts_postgresql(hosts):
    db, app = hosts
    before = int(on_db(db, "SELECT count(*) FROM donations_image"))
    status, body = donate(app, 70, "dog")
    assert status in (200, 201), body
    assert int(on_db(db, "SELECT count(*) FROM donations_image")) == before + 1
    # The app's cache and rate limits are in the db host's Redis.
    password = urlsplit(db.urls["REDIS_URL"]).password
    keys = db.run(
        "redis-cli", "--user", "imagemonkey", "--scan", "--pattern", "im:*",
        env={"REDISCLI_AUTH": password},
    ).stdout  # fmt: skip
    assert keys.strip(), "no key of the app in the db host's Redis"


def test_postgresql_and_redis_take_connections_from_the_app_address_only(hosts):
    db, app = hosts
    for port in (5432, 6379):
        assert connect(app, APP_ADDRESS, port) == "connected", port
        assert connect(app, STRANGER, port) == "dropped", port
    # What the firewall lets in, pg_hba.conf still checks: only the app host's address.
    from_elsewhere = db.run("psql", db.urls["DATABASE_URL"], "-tAc", "SELECT 1", check=False)
    assert from_elsewhere.returncode != 0
    assert f'no pg_hba.conf entry for host "{DB_ADDRESS}"' in from_elsewhere.stderr
    hba = [
        line.split()
        for line in db.run("cat", f"{PG}/pg_hba.conf").stdout.splitlines()
        if line.startswith("host")
    ]
    remote = [line for line in hba if line[3] not in ("127.0.0.1/32", "::1/128")]
    assert remote == [["host", "imagemonkey", "imagemonkey", f"{APP_ADDRESS}/32", "scram-sha-256"]]


def accepts(rule: str, port: int) -> bool:
    ports = re.search(r"--dports? ([\d,]+)", rule)
    return (
        rule.startswith("-A INPUT") and rule.endswith("-j ACCEPT")
        and bool(ports) and str(port) in ports.group(1).split(",")
    )  # fmt: skip


def test_the_database_hosts_firewall_accepts_5432_and_6379_from_the_app_host_only(hosts):
    db, _ = hosts
    rules = db.run("iptables", "-S").stdout.splitlines()
    assert "-P INPUT DROP" in rules, rules
    for port in (5432, 6379):
        accepted = [rule for rule in rules if accepts(rule, port)]
        assert len(accepted) == 1 and f"-s {APP_ADDRESS}/32 " in accepted[0], (port, rules)
    assert any(accepts(rule, 22) for rule in rules)
    assert not any(accepts(rule, 80) or accepts(rule, 443) for rule in rules)


def db_state(db: Host) -> dict[str, str]:
    packages = db.run("dpkg-query", "-W", "-f", "${Package} ${Version}\\n").stdout
    return {
        "files": db.run("sha256sum", *DB_CONFIGURATION).stdout,
        "packages": hashlib.sha256(packages.encode()).hexdigest(),
        "roles": on_db(db, "SELECT rolname, rolcanlogin FROM pg_roles ORDER BY 1"),
        "rules": db.run("iptables", "-S").stdout,
        # Neither server was restarted: the app hosts' connections stay.
        "postgresql": on_db(db, "SELECT pg_postmaster_start_time()"),
        "redis": db.run("pgrep", "-x", "redis-server").stdout,
    }


def app_state(app: Host) -> dict[str, str]:
    packages = app.run("dpkg-query", "-W", "-f", "${Package} ${Version}\\n").stdout
    return {
        "files": app.run("sha256sum", *APP_CONFIGURATION).stdout,
        "packages": hashlib.sha256(packages.encode()).hexdigest(),
        "rules": app.run("iptables", "-S").stdout,
        "gunicorn": app.run("supervisorctl", "pid", "imagemonkey").stdout.strip(),
    }


def test_a_second_run_of_each_role_changes_nothing(hosts):
    db, app = hosts
    before = db_state(db), app_state(app)
    assert "all installed" in install_db(db)
    assert "all installed" in install_app(app, db.urls)
    assert (db_state(db), app_state(app)) == before
    status, _ = site(app, "/")
    assert status == 200
    # And the donation is still there, seen through the app.
    count = app.run(
        "runuser", "-u", "imagemonkey", "--", "env", "-C", APP, f"{APP}/deploy/with-env",
        ENV_FILE, f"{APP}/.venv/bin/python", "manage.py", "shell", "-c",
        "import json; from donations.models import Image; print(json.dumps(Image.objects.count()))",
    ).stdout.splitlines()[-1]  # fmt: skip
    assert int(count) == int(on_db(db, "SELECT count(*) FROM donations_image")) >= 1


def test_the_database_host_serves_the_app_after_a_reboot_that_brings_its_address_late(hosts, link):
    db, app = hosts
    rules = db.run("iptables", "-S").stdout
    count = on_db(db, "SELECT count(*) FROM donations_image")

    def address_arrives_late():
        # As DHCP on a real host: the address comes once PostgreSQL is being started, and
        # it must not have started without it.
        for _ in range(240):
            state = db.run(
                "systemctl", "show", "-P", "ActiveState,SubState", "postgresql@15-main",
                check=False,
            ).stdout.split()  # fmt: skip
            if state[:1] in (["active"], ["failed"]) or state[1:] == ["start-pre"]:
                break
            time.sleep(0.5)
        link.address(link.left, f"{DB_ADDRESS}/24")

    link.unaddress(link.left, f"{DB_ADDRESS}/24")
    db.reboot(starting=address_arrives_late)
    assert db.run("iptables", "-S").stdout == rules
    assert connect(app, APP_ADDRESS, 5432) == "connected"
    assert connect(app, APP_ADDRESS, 6379) == "connected"
    assert connect(app, STRANGER, 5432) == "dropped"
    status, _ = site(app, "/")
    assert status == 200
    status, body = donate(app, 80, "cat")
    assert status in (200, 201), body
    assert int(on_db(db, "SELECT count(*) FROM donations_image")) == int(count) + 1
