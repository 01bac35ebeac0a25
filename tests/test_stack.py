"""The real stack, checked from outside: nginx from Debian with the repository's rendered
configuration in front of two app hosts (gunicorn, 4 and 2 workers, each on its unix
socket with a DATA_DIR of its own), a PostgreSQL primary with a streaming replica, and Redis.

Only names, ports and paths differ from production: loopback ports, a self-signed
certificate, a scratch folder, a PostgreSQL cluster of its own (tools/services.sh under
the scratch folder, with `replica-start`: pg_basebackup -R, another socket) holding
imagemonkey_stack and imagemonkey_scratch, and a Redis of its own on a unix socket, with
the users file install.sh installs (a password, no default user). 127.0.0.2 plays a trusted
load balancer (all of 127/8 is loopback). The two app hosts keep their pictures in one
bucket (MEDIA_BACKEND=s3) of moto's S3 server on loopback (tests/s3.py), as production's app
hosts share a bucket; each has a DATA_DIR and MEDIA_ROOT of its own, and no folder is shared.

    .venv/bin/pytest -m stack
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg2
import psycopg2.sql
import pytest
import redis
import requests
from django.conf import settings

from donations.storage import PUBLIC_FILE_CACHE_CONTROL
from tests.s3 import S3Server
from tests.test_deploy import (
    DEPLOY,
    ROOT,
    debian_tool,
    is_root,
    local_nginx_variables,
    render_config,
    self_signed_certificate,
)

pytestmark = pytest.mark.stack

SITE = "imagemonkey.test"
API = "api.imagemonkey.test"
PROXY = "127.0.0.2"  # the trusted load balancer
VOTE_LIMIT = 10
MAX_UPLOAD_MB = 1
# Named after this process, so that runs sharing the PostgreSQL server never collide.
STACK_DB = f"imagemonkey_stack_{os.getpid()}"
SCRATCH_DB = f"imagemonkey_scratch_{os.getpid()}"
MB = 1024 * 1024
TRUSTED_VOTERS = 120
EXPORT_LABELS = 6
WORKERS, THREADS = 4, 4
WORKERS_B = 2  # host B's
REPLICA_APPLICATION = "imagemonkey-stack-replica"  # how the replica's readers are named
REPLICA_MAX_LAG_S = 20
NGINX_GROUP = "nogroup"  # of nginx's workers when the test runs as root (local_nginx_variables)

# Run inside the stack's own Django (manage.py shell): the rows the checks need, made the
# way the app makes them. It prints what the test needs to know as JSON.
SETUP_DATA = """
import json, os
from django.contrib.auth import get_user_model
from django.db import transaction
from donations.ingest import ingest
from labels.models import Label
from tests.helpers import photo_bytes
from donations.models import ImageLabel
from people.models import Voter

label = Label.objects.create(name="dog")
public = []
for _ in range(3):
    outcome = ingest(photo_bytes(320, 240), filename="photo.jpg")
    assert outcome.accepted, outcome.message
    with transaction.atomic():
        outcome.image.decide("approve")
    ImageLabel.objects.create(image=outcome.image, label=label, servable=True)
    public.append(outcome.image)
pending = ingest(photo_bytes(320, 240), filename="pending.jpg").image
# Pictures of noise (JPEG cannot shrink them), each validated under a label of its own and
# never served as a task: an export of those labels is a tar of several megabytes, one
# folder per label (an export puts each picture in one folder only).
import io, random
from PIL import Image as PILImage
export_labels = [f"noise{number}" for number in range(int(os.environ["STACK_EXPORT_LABELS"]))]
for name in export_labels:
    noise = PILImage.frombytes("RGB", (1600, 1200), random.randbytes(1600 * 1200 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=95)
    big = ingest(buffer.getvalue(), filename="noise.jpg")
    assert big.accepted, big.message
    with transaction.atomic():
        big.image.decide("approve")
    ImageLabel.objects.create(
        image=big.image, label=Label.objects.create(name=name), status=ImageLabel.Status.VALIDATED
    )
get_user_model().objects.create_superuser(
    "moderator", "moderator@example.org", os.environ["STACK_MODERATOR_PASSWORD"]
)
voters = int(os.environ["STACK_TRUSTED_VOTERS"])
tokens = [Voter.create_with_token(trusted=True)[1] for _ in range(voters)]
fresh_tokens = [Voter.create_with_token(trusted=True)[1] for _ in range(4)]
print(json.dumps({
    "public": [str(image.uuid) for image in public],
    "public_files": [image.file_name(kind) for image in public for kind in ("master", "display", "thumb")],
    "pending": str(pending.uuid),
    "pending_file": pending.file_name("master"),
    "tokens": tokens,
    "fresh_tokens": fresh_tokens,
    "export_labels": export_labels,
}))
"""


# --- A small HTTP(S) client on the standard library ---------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class AppHost:
    name: str
    process: subprocess.Popen
    log: Path
    socket: Path


@dataclass
class Stack:
    root: Path
    http_port: int
    https_port: int
    tls: ssl.SSLContext
    env: dict[str, str]
    gunicorn: subprocess.Popen
    gunicorn_log: Path
    data: dict
    moderator_password: str
    acme_root: Path
    redis_socket: Path
    redis_url: str
    s3: S3Server
    bucket: str
    hosts: list[AppHost] = field(default_factory=list)
    cookies: dict[str, str] = field(default_factory=dict)

    def direct(
        self,
        host: AppHost,
        path: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        address: str = "127.0.0.1",
        cookies: dict[str, str] | None = None,
    ) -> Response:
        """A request sent straight to one app host's socket, with the headers nginx sets."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(20)
            sock.connect(str(host.socket))
            connection = http.client.HTTPConnection(SITE)
            connection.sock = sock
            sent = {
                "Host": f"{SITE}:{self.https_port}",
                "X-Forwarded-Proto": "https",
                "X-Real-IP": address,
                "Connection": "close",
                **(headers or {}),
            }
            if cookies:
                sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Response(response.status, response.getheaders(), response.read())

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        host: str = SITE,
        tls: bool = True,
        sni: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        source: str = "127.0.0.1",
        cookies: dict[str, str] | None = None,
    ) -> Response:
        port = self.https_port if tls else self.http_port
        sock = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0))
        try:
            if tls:
                sock = self.tls.wrap_socket(sock, server_hostname=sni or host)
            connection = http.client.HTTPConnection(host, port, timeout=20)
            connection.sock = sock
            sent = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
            if cookies:
                sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
            # nginx may answer (413) before it has read the whole body.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Response(response.status, response.getheaders(), response.read())
        finally:
            sock.close()

    def task(self, **kwargs) -> dict:
        """The next task the site serves (with its ticket), as a client would ask for it."""
        response = self.request("/v1/validate?label=dog", **kwargs)
        assert response.status == 200, response.body[:500]
        return response.json()

    def vote(self, image: str, answer: str = "yes", ticket: str = "", **kwargs) -> Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers |= kwargs.pop("headers", {})
        return self.request(
            f"/v1/donation/{image}/validate/{answer}",
            method="POST",
            body=json.dumps({"label": "dog", "sublabel": "", "ticket": ticket}).encode(),
            headers=headers,
            **kwargs,
        )

    def vote_on_task(self, answer: str = "yes", **kwargs) -> Response:
        """Ask for a task and answer it, with the same identity and address."""
        task = self.task(**kwargs)
        return self.vote(task["uuid"], answer, task["ticket"], **kwargs)

    def gunicorn_lines(self, marker: str, host: AppHost | None = None) -> list[str]:
        """Lines of the app hosts' access logs (or one host's) that hold the marker."""
        logs = [host.log] if host else [h.log for h in self.hosts] or [self.gunicorn_log]
        return [line for log in logs for line in log.read_text().splitlines() if marker in line]

    def gunicorn_saw(self, marker: str, wait: float = 5.0) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.gunicorn_lines(marker):
                return True
            time.sleep(0.05)
        return False

    def assert_gunicorn_never_saw(self, *markers: str) -> None:
        """Requests that reach gunicorn are logged; a later control request proves the
        log is being written, so an absent line means the request never arrived."""
        control = f"control-{secrets.token_hex(4)}"
        assert self.request(f"/healthz?probe={control}").status == 200
        assert self.gunicorn_saw(control), "gunicorn's access log is not being written"
        for marker in markers:
            assert not self.gunicorn_lines(marker), f"{marker} reached gunicorn"

    def login(self) -> dict[str, str]:
        """Sign in through the admin form, with its CSRF token, as a browser would."""
        page = self.request("/admin/login/")
        cookies = set_cookies(page)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)[1].decode()
        origin = f"https://{SITE}:{self.https_port}"
        answer = self.request(
            "/admin/login/?next=/admin/",
            method="POST",
            body=urlencode(
                {
                    "username": "moderator",
                    "password": self.moderator_password,
                    "csrfmiddlewaretoken": token,
                    "next": "/admin/",
                }
            ).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": origin,
                "Referer": f"{origin}/admin/login/",
            },
            cookies=cookies,
        )
        assert answer.status == 302, answer.body[:2000]
        self.login_set_cookies = answer.all("Set-Cookie")
        return cookies | set_cookies(answer)

    def object(self, key: str) -> bytes:
        """An object of the bucket, read with the app's credentials."""
        return self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def bucket_url(self, key: str) -> str:
        """The bucket's own URL of a key, as anyone on the internet would ask for it."""
        return f"{self.s3.endpoint}/{self.bucket}/{key}"

    def media_root(self, host: AppHost) -> Path:
        return self.root / ("data" if host.name == "a" else f"data-{host.name}") / "media"

    def sql(self, query, database: str = STACK_DB, params=None) -> list[tuple]:
        with contextlib.closing(connect(database)) as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()


def set_cookies(response: Response) -> dict[str, str]:
    cookies = {}
    for header in response.all("Set-Cookie"):
        name, _, value = header.split(";", 1)[0].partition("=")
        cookies[name.strip()] = value.strip()
    return cookies


# --- Starting and stopping the stack --------------------------------------------------------


# The PostgreSQL server the stack uses: the tests' own until the fixture starts a cluster
# of the stack's (with its replica) and points this at it.
SERVER: dict = {}


def db_server() -> dict:
    return SERVER or settings.DATABASES["default"]


def connect(database: str, conf: dict | None = None):
    conf = conf or db_server()
    connection = psycopg2.connect(
        dbname=database,
        user=conf["USER"],
        password=conf.get("PASSWORD") or None,
        host=conf.get("HOST") or None,
        port=conf.get("PORT") or None,
    )
    connection.autocommit = True
    return connection


def database_url(database: str, conf: dict | None = None, **options: str) -> str:
    conf = conf or db_server()
    password = f":{quote(conf['PASSWORD'], safe='')}" if conf.get("PASSWORD") else ""
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    host = quote(conf.get("HOST") or "", safe="")
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{quote(conf['USER'], safe='')}{password}@{host}{port}/{database}{query}"


def fresh_database(name: str) -> None:
    with contextlib.closing(connect("postgres")) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with contextlib.closing(connect("postgres")) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_abandoned_databases() -> None:
    """Databases of earlier runs that were killed before they could clean up."""
    with contextlib.closing(connect("postgres")) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^imagemonkey_(stack|scratch)_[0-9]+$'"
        )
        names = [name for (name,) in cursor.fetchall()]
    for name in names:
        if not Path(f"/proc/{name.rsplit('_', 1)[1]}").exists():
            drop_database(name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stop a process we started, and the process group it leads (gunicorn's workers).

    SIGINT is the quick shutdown for both gunicorn and nginx: nothing here is worth
    waiting for.
    """
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for(check, what: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if check():
                return
        time.sleep(0.1)
    pytest.fail(f"{what} did not come up within {timeout} s:\n{log.read_text()[-3000:]}")


def socket_health(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        connection = http.client.HTTPConnection(SITE)
        connection.sock = sock
        connection.request("GET", "/healthz", headers={"Host": SITE, "X-Forwarded-Proto": "https"})
        return connection.getresponse().status == 200


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def run_checked(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def stack(s3_server):
    nginx = debian_tool("nginx", "nginx")
    debian_tool("openssl", "openssl")
    debian_tool("pg_dump", "postgresql-client")
    root = Path(tempfile.mkdtemp(prefix="imagemonkey-stack-"))
    root.chmod(0o755)  # nginx's workers run as nobody when the test runs as root
    prefix = f"stack{secrets.token_hex(4)}"
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        # The stack's own PostgreSQL cluster and its streaming replica (a copy of a small
        # cluster is quick; the tests' server may hold the benchmarks' gigabytes).
        cluster = root / "db"
        services = [str(ROOT / "tools" / "services.sh")]
        cluster_env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "DATA_DIR", "REDIS_URL")
        } | {"DATA_DIR": str(cluster), "REDIS_URL": "unused"}  # no Redis of its own: ours below
        cleanup.callback(
            subprocess.run, [*services, "stop"], env=cluster_env, capture_output=True, timeout=120
        )
        run_checked([*services, "start", STACK_DB, SCRATCH_DB], env=cluster_env)
        run_checked([*services, "replica-start"], env=cluster_env)
        cleanup.callback(SERVER.clear)
        SERVER.update(
            USER="imagemonkey",
            PASSWORD=(cluster / "pg" / "password").read_text().strip(),
            HOST=str(cluster / "pg" / "run"),
            PORT="",
        )
        replica = SERVER | {"HOST": str(cluster / "pg-replica" / "run")}
        cleanup.callback(drop_database, SCRATCH_DB)
        cleanup.callback(drop_database, STACK_DB)
        drop_abandoned_databases()
        fresh_database(STACK_DB)
        fresh_database(SCRATCH_DB)

        # Both hosts' pictures: one bucket, public/ readable by anyone (the README's policy).
        bucket = s3_server.new_bucket()
        cleanup.callback(s3_server.remove_bucket, bucket)

        http_port = https_port = free_port()
        while https_port == http_port:
            https_port = free_port()
        data_dir, run_dir = root / "data", root / "run"
        for folder in (data_dir / "media", run_dir, root / "acme"):
            folder.mkdir(parents=True)
        socket_path = run_dir / "gunicorn.sock"
        socket_b = run_dir / "gunicorn-b.sock"
        password = secrets.token_urlsafe(16)
        redis_password = secrets.token_hex(32)

        cert, key = self_signed_certificate(root / "tls", SITE, API)
        nginx_root = root / "nginx"
        render_config(
            nginx_root / "rendered",
            server_name=SITE,
            api_server_name=API,
            http_listen=f"127.0.0.1:{http_port}",
            https_listen=f"127.0.0.1:{https_port}",
            app_root=str(ROOT),
            data_dir=str(data_dir),
            gunicorn_socket=str(socket_path),
            app_servers=f"unix:{socket_path},unix:{socket_b}",
            max_upload_mb=str(MAX_UPLOAD_MB),
            trusted_proxies=PROXY,
            acme_root=str(root / "acme"),
            # The app's exact limits are under test here; nginx's coarse guard for votes
            # must not interfere, while the donation guard is low enough to be seen.
            vote_rate="200r/s",
            vote_burst="400",
            donate_rate="2r/s",
            donate_burst="5",
            redis_key_prefix=prefix,
            redis_password_sha256=hashlib.sha256(redis_password.encode()).hexdigest(),
            **local_nginx_variables(nginx_root, cert, key),
        )

        redis_dir = root / "redis"
        redis_dir.mkdir()
        redis_socket = redis_dir / "redis.sock"
        redis_log = redis_dir / "redis.log"
        with open(redis_log, "w") as log:
            redis_server = subprocess.Popen(
                [
                    "redis-server", str(nginx_root / "rendered" / "redis" / "imagemonkey.conf"),
                    "--port", "0", "--unixsocket", str(redis_socket), "--unixsocketperm", "700",
                    "--dir", str(redis_dir), "--save", "", "--appendonly", "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        cleanup.callback(stop, redis_server)
        wait_for(redis_socket.exists, "redis-server", redis_server, redis_log, timeout=20)
        redis_url = f"unix://imagemonkey:{redis_password}@{redis_socket}?db=0"
        origins = f"https://{SITE}:{https_port},https://{API}:{https_port}"
        env_file = root / "stack.env"
        env_file.write_text(
            "\n".join(
                [
                    f"SECRET_KEY={secrets.token_urlsafe(50)}",
                    "DEBUG=0",
                    "HTTPS=1",
                    f"ALLOWED_HOSTS={SITE},{API}",
                    f"CSRF_TRUSTED_ORIGINS={origins}",
                    f"DATABASE_URL={database_url(STACK_DB)}",
                    "DATABASE_REPLICA_URLS="
                    + database_url(STACK_DB, replica, application_name=REPLICA_APPLICATION),
                    # Wide enough that a replica held back on purpose still serves (below).
                    f"REPLICA_MAX_LAG_S={REPLICA_MAX_LAG_S}",
                    f"REDIS_URL={redis_url}",
                    f"CACHE_KEY_PREFIX={prefix}",
                    f"DATA_DIR={data_dir}",
                    f"MEDIA_ROOT={data_dir / 'media'}",
                    *(f"{name}={value}" for name, value in s3_server.environment(bucket).items()),
                    f"MAX_UPLOAD_MB={MAX_UPLOAD_MB}",
                    "RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP",
                    "PRIVATE_MEDIA_X_ACCEL=1",
                    # Hourly, not per minute: django-ratelimit's windows are aligned to the
                    # clock, and a minute boundary inside the burst would allow 2N.
                    f"VOTE_RATE={VOTE_LIMIT}/h",
                    f"GUNICORN_BIND=unix:{socket_path}",
                    f"WORKERS={WORKERS}",
                    f"THREADS={THREADS}",
                    "LOG_LEVEL=WARNING",
                ]
            )
            + "\n"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "LANG": "C.UTF-8",
            "STACK_MODERATOR_PASSWORD": password,
            "STACK_TRUSTED_VOTERS": str(TRUSTED_VOTERS),
            "STACK_EXPORT_LABELS": str(EXPORT_LABELS),
        }
        python = [str(DEPLOY / "with-env"), str(env_file), sys.executable, "manage.py"]
        # collectstatic needs no database: it runs while the database is prepared.
        collect = subprocess.Popen(
            [*python, "collectstatic", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        cleanup.callback(stop, collect)
        run_checked([*python, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env)
        created = run_checked([*python, "shell", "-c", SETUP_DATA], cwd=ROOT, env=env)
        data = json.loads(created.stdout.strip().splitlines()[-1])
        output = collect.communicate(timeout=120)[0]
        assert collect.returncode == 0, output.decode()

        # Host B: the same release, secrets and bucket, a DATA_DIR and MEDIA_ROOT of its own
        # (its static files copied as a deploy would), half the workers.
        data_b = root / "data-b"
        (data_b / "media").mkdir(parents=True)
        shutil.copytree(data_dir / "static", data_b / "static")
        env_b = root / "stack-b.env"
        env_b.write_text(
            env_file.read_text()
            .replace(f"DATA_DIR={data_dir}\n", f"DATA_DIR={data_b}\n")
            .replace(f"MEDIA_ROOT={data_dir / 'media'}\n", f"MEDIA_ROOT={data_b / 'media'}\n")
            .replace(f"GUNICORN_BIND=unix:{socket_path}\n", f"GUNICORN_BIND=unix:{socket_b}\n")
            .replace(f"WORKERS={WORKERS}\n", f"WORKERS={WORKERS_B}\n")
        )
        assert f"MEDIA_ROOT={data_b / 'media'}\n" in env_b.read_text(), "no folder is shared"
        hosts = []
        for name, host_env, host_socket in (("a", env_file, socket_path), ("b", env_b, socket_b)):
            host_log = root / ("gunicorn.log" if name == "a" else f"gunicorn-{name}.log")
            with open(host_log, "w") as log:
                process = subprocess.Popen(
                    [
                        str(DEPLOY / "with-env"), str(host_env),
                        str(Path(sys.executable).parent / "gunicorn"), "imagemonkey.wsgi",
                        "-c", str(DEPLOY / "gunicorn.conf.py"),
                    ],
                    cwd=ROOT,
                    # The worker's pid in each access-log line shows which worker answered.
                    # As root, the socket's group is that of nginx's workers (nobody's), as
                    # in production, where nginx's user is in the app's group.
                    env=env
                    | {
                        "GUNICORN_CMD_ARGS": "--access-logformat 'pid=%(p)s \"%(r)s\" %(s)s'"
                        + (f" --group {NGINX_GROUP}" if is_root() else "")
                    },
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            cleanup.callback(stop, process)
            hosts.append(AppHost(name, process, host_log, host_socket))
        gunicorn, gunicorn_log = hosts[0].process, hosts[0].log

        nginx_log = nginx_root / "logs" / "stderr.log"
        conf = nginx_root / "rendered" / "nginx" / "local.conf"
        command = [nginx, "-p", str(nginx_root / "local"), "-c", str(conf)]
        run_checked([*command, "-t"])
        with open(nginx_log, "w") as log:
            server = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        cleanup.callback(stop, server)
        wait_for(lambda: port_open(https_port), "nginx", server, nginx_log, timeout=20)
        for host in hosts:
            wait_for(lambda h=host: socket_health(h.socket), "gunicorn", host.process, host.log)

        tls = ssl.create_default_context(cafile=str(cert))
        yield Stack(
            root=root,
            http_port=http_port,
            https_port=https_port,
            tls=tls,
            env=env,
            gunicorn=gunicorn,
            gunicorn_log=gunicorn_log,
            data=data,
            moderator_password=password,
            acme_root=root / "acme",
            redis_socket=redis_socket,
            redis_url=redis_url,
            s3=s3_server,
            bucket=bucket,
            hosts=hosts,
        )


# --- The checks, in the order of the list -------------------------------------------


PAGES = (
    "/",
    "/browse",
    "/donate",
    "/validate",
    "/about",
    "/admin/login/",
    "/accounts/login/",
    "/accounts/signup/",
)


def test_https_pages_answer_with_hsts_csp_nosniff_and_frame_denial(stack):
    for path in PAGES:
        response = stack.request(path)
        assert response.status == 200, (path, response.status)
        hsts = response.header("Strict-Transport-Security") or ""
        assert int(re.search(r"max-age=(\d+)", hsts)[1]) >= 31536000, path
        assert "includeSubDomains" in hsts, path
        csp = response.header("Content-Security-Policy") or ""
        assert "frame-ancestors 'none'" in csp, path
        assert "'unsafe-inline'" not in csp, path
        assert response.all("X-Content-Type-Options") == ["nosniff"], path
        assert response.header("X-Frame-Options") == "DENY", path


def test_every_cookie_is_secure_httponly_and_samesite(stack):
    cookies = [cookie for path in PAGES for cookie in stack.request(path).all("Set-Cookie")]
    names = {cookie.split("=", 1)[0] for cookie in cookies}
    assert names == {"__Host-csrftoken"}, "a page view starts no session (a GET writes nothing)"
    stack.login()
    cookies += stack.login_set_cookies
    names = {cookie.split("=", 1)[0] for cookie in cookies}
    assert {"__Host-csrftoken", "__Host-sessionid"} <= names, names
    for cookie in cookies:
        attributes = {
            name.strip().lower(): value.strip()
            for name, _, value in (part.partition("=") for part in cookie.split(";")[1:])
        }
        assert {"secure", "httponly", "samesite"} <= attributes.keys(), cookie
        # What a browser requires of a __Host- cookie.
        assert attributes.get("path") == "/" and "domain" not in attributes, cookie


def test_gunicorns_socket_lets_in_only_its_owner_and_nginxs_group(stack):
    socket_path = stack.root / "run" / "gunicorn.sock"
    assert stat.S_ISSOCK(socket_path.stat().st_mode)
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o660, oct(socket_path.stat().st_mode)
    if is_root():
        assert socket_path.group() == NGINX_GROUP
    assert stack.request("/healthz").status == 200  # and nginx still gets in


def test_the_api_host_answers_too(stack):
    response = stack.request("/v1/label", host=API)
    assert response.status == 200
    assert response.header("Content-Type").startswith("application/json")


def test_plain_http_redirects_to_https(stack):
    response = stack.request("/browse?label=dog", tls=False)
    assert response.status == 301
    assert response.header("Location") == f"https://{SITE}:{stack.https_port}/browse?label=dog"
    response = stack.request("/v1/label", tls=False, host=API)
    assert response.header("Location") == f"https://{API}:{stack.https_port}/v1/label"


def test_certbot_challenges_are_served_over_plain_http(stack):
    challenge = stack.acme_root / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / "token123").write_text("token123.key")
    response = stack.request("/.well-known/acme-challenge/token123", tls=False)
    assert response.status == 200
    assert response.body == b"token123.key"


def test_an_unknown_host_is_dropped(stack):
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        stack.request("/", tls=False, host="evil.example")
    # TLS: the handshake is refused before any certificate is shown...
    with pytest.raises(ssl.SSLError):
        stack.request("/", host="evil.example")
    # ...and a request naming another host over our TLS connection gets no answer.
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        stack.request("/", sni=SITE, host="evil.example")


def test_an_upload_just_over_the_limit_stops_at_nginx(stack):
    limit = (MAX_UPLOAD_MB + 1) * MB  # nginx's: MAX_UPLOAD_MB plus room for form fields
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Accept": "application/json"}
    for path in ("/donate", "/v1/donate"):
        marker = f"big-{secrets.token_hex(4)}"
        response = stack.request(
            f"{path}?probe={marker}", method="POST", body=b"x" * (limit + 1), headers=headers
        )
        assert response.status == 413, path
        assert b"413 Request Entity Too Large" in response.body
        stack.assert_gunicorn_never_saw(marker)
    # Over MAX_UPLOAD_MB but within nginx's room: Django answers, with its explanation.
    marker = f"near-{secrets.token_hex(4)}"
    response = stack.request(
        f"/donate?probe={marker}",
        method="POST",
        body=b"x" * (MAX_UPLOAD_MB * MB + MB // 2),
        headers=headers,
    )
    assert response.status == 413
    assert f"larger than {MAX_UPLOAD_MB} MB" in response.json()["error"]
    assert stack.gunicorn_saw(marker)


def test_static_files_come_from_nginx_and_public_pictures_from_the_bucket_with_cache_headers(
    stack,
):
    static_root = Path(stack.env["HOME"]) / "data" / "static"
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["css/site.css"]
    marker = f"static-{secrets.token_hex(4)}"
    response = stack.request(f"/static/{hashed}?probe={marker}")
    assert response.status == 200
    assert response.body == (static_root / hashed).read_bytes()
    assert response.header("Cache-Control") == "public, max-age=31536000, immutable"
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert "max-age=31536000" in response.header("Strict-Transport-Security")
    compressed = stack.request(f"/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert compressed.header("Content-Encoding") == "gzip"
    assert stack.request("/static/css/site.css").header("Cache-Control") == "public, max-age=3600"

    # Public pictures are read from the bucket's own URL, as the pages name them, with the
    # lifetime the app set on each object; no host has them on its disk, so nginx's /media/
    # (which production keeps) answers 404 by itself.
    markers = [marker]
    for name in stack.data["public_files"]:
        served = requests.get(stack.bucket_url(f"public/{name}"), timeout=10)
        assert served.status_code == 200, name
        assert served.content == stack.object(f"public/{name}")
        assert served.headers["Content-Type"] == "image/jpeg"
        assert served.headers["Cache-Control"] == PUBLIC_FILE_CACHE_CONTROL
        markers.append(f"media-{secrets.token_hex(4)}")
        assert stack.request(f"/media/{name}?probe={markers[-1]}").status == 404
    stack.assert_gunicorn_never_saw(*markers)


def test_nothing_but_pictures_is_served_from_media(stack):
    folder = Path(stack.env["HOME"]) / "data" / "media" / "public" / "ab"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("evil.php", "evil.html", "evil.jpg.php", "evil.svg", "evil.jpg"):
        (folder / name).write_text("<?php system($_GET['c']); ?><script>alert(1)</script>")
        response = stack.request(f"/media/ab/{name}")
        assert response.status == 404, name
        assert b"<script>" not in response.body


def test_an_unapproved_picture_reaches_only_moderators(stack):
    name, uuid = stack.data["pending_file"], stack.data["pending"]
    assert stack.request(f"/media/{name}").status == 404
    assert stack.request(f"/_private/{name}").status == 404
    anonymous = stack.request(f"/moderation/file/{uuid}/master")
    assert anonymous.status == 302
    assert "/admin/login/" in anonymous.header("Location")

    assert requests.get(stack.bucket_url(f"private/{name}"), timeout=10).status_code == 403

    # The app reads the object with its credentials and sends it (nginx has none).
    response = stack.request(f"/moderation/file/{uuid}/master", cookies=stack.login())
    assert response.status == 200
    assert response.body == stack.object(f"private/{name}")
    assert response.header("Content-Type") == "image/jpeg"
    assert response.header("X-Accel-Redirect") is None
    assert response.header("Content-Security-Policy") == "default-src 'none'; sandbox"
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert set(response.all("Cache-Control")) == {"private, no-store"}


def test_the_api_delivers_a_public_picture_from_the_bucket_through_nginx(stack):
    response = stack.request(f"/v1/donation/{stack.data['public'][0]}", host=API)
    assert response.status == 200
    assert response.header("Content-Type") == "image/jpeg"
    assert response.header("X-Accel-Redirect") is None
    assert len(response.all("Cache-Control")) == 1  # the app's, not also the /media/ one
    files = stack.data["public_files"]
    assert any(response.body == stack.object(f"public/{name}") for name in files)


def worker_pids(master: int) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == master and b"gunicorn" in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
    return pids


def test_the_vote_limit_holds_across_four_workers_and_spoofed_addresses(stack):
    assert len(worker_pids(stack.gunicorn.pid)) == WORKERS
    start = threading.Barrier(3 * VOTE_LIMIT)
    voted_on = set()

    def spoofed_vote(_) -> Response:
        fake = ".".join(str(random.randrange(1, 255)) for _ in range(4))
        task = stack.task()  # each a new anonymous visitor, served a task of its own
        voted_on.add(task["uuid"])
        start.wait()
        spoof = {"X-Forwarded-For": fake, "X-Real-IP": fake}
        return stack.vote(task["uuid"], ticket=task["ticket"], headers=spoof)

    with ThreadPoolExecutor(max_workers=3 * VOTE_LIMIT) as pool:
        responses = list(pool.map(spoofed_vote, range(3 * VOTE_LIMIT)))
    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * VOTE_LIMIT + [429] * (2 * VOTE_LIMIT), statuses
    for response in responses:
        if response.status == 429:
            assert "error" in response.json()  # the app's answer, not nginx's
    answered_by = {
        line.split()[0]
        for image in voted_on
        for line in stack.gunicorn_lines(f"/v1/donation/{image}/validate/yes")
        if line.endswith(" 200")
    }
    assert len(answered_by) > 1, "the accepted votes should be spread over several workers"

    # Through the trusted proxy, X-Forwarded-For names the client: naming the address that
    # used up its votes is still refused, and another client has votes of its own.
    spent = stack.vote_on_task(source=PROXY, headers={"X-Forwarded-For": "127.0.0.1"})
    assert spent.status == 429
    other = stack.vote_on_task(source=PROXY, headers={"X-Forwarded-For": "203.0.113.9"})
    assert other.status == 200, other.body


def table_counts(database: str, stack: Stack) -> dict[str, int]:
    tables = [
        name
        for (name,) in stack.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database
        )
    ]
    count = psycopg2.sql.SQL("SELECT count(*) FROM {}")
    return {
        table: stack.sql(count.format(psycopg2.sql.Identifier(table)), database)[0][0]
        for table in tables
    }


def pair_tallies(database: str, stack: Stack) -> list[tuple]:
    """Each pair's stored counts next to the counts of its counted votes."""
    return stack.sql(
        """
        SELECT p.id, p.num_yes, p.num_no,
               count(v.id) FILTER (WHERE v.counted AND v.answer = 1),
               count(v.id) FILTER (WHERE v.counted AND v.answer = 0)
        FROM validation_imagelabel p LEFT JOIN validation_vote v ON v.pair_id = p.id
        GROUP BY p.id ORDER BY p.id
        """,
        database,
    )


def media_files(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_a_backup_taken_while_votes_arrive_restores_consistently(stack):
    backups = stack.root / "backups"
    backups.mkdir()
    expired = backups / "db-20000101T000000Z.dump"
    expired.write_text("an old backup")
    os.utime(expired, (time.time() - 30 * 86400,) * 2)
    stop_voting = threading.Event()
    accepted: list[float] = []

    def vote_continuously() -> None:
        # Trusted voters, each from its own address behind the trusted proxy: every vote
        # counts, and no limit is reached.
        for number, token in enumerate(stack.data["tokens"]):
            for _ in stack.data["public"]:
                if stop_voting.is_set():
                    return
                address = f"10.{number}.{random.randrange(256)}.{random.randrange(1, 255)}"
                try:
                    response = stack.vote_on_task(
                        "yes" if random.random() < 0.5 else "no",
                        source=PROXY,
                        headers={"X-Voter-Token": token, "X-Forwarded-For": address},
                    )
                except AssertionError:
                    break  # nothing left for this voter
                if response.status == 200:
                    accepted.append(time.monotonic())

    voter = threading.Thread(target=vote_continuously)
    voter.start()
    try:
        deadline = time.monotonic() + 20
        while len(accepted) < 10 and time.monotonic() < deadline and voter.is_alive():
            time.sleep(0.05)
        assert len(accepted) >= 10, "the votes did not get through"
        votes_before = stack.sql("SELECT count(*) FROM validation_vote")[0][0]
        started = time.monotonic()
        run_checked(
            [
                str(DEPLOY / "backup.sh"),
                "--env-file", str(stack.root / "stack.env"),
                "--dest", str(backups),
                "--keep-days", "7",
            ]
        )  # fmt: skip
        finished = time.monotonic()
    finally:
        stop_voting.set()
        voter.join()
    assert any(started <= moment <= finished for moment in accepted), (
        "no vote arrived during the backup"
    )
    votes_after = stack.sql("SELECT count(*) FROM validation_vote")[0][0]

    dumps = sorted(backups.glob("db-*.dump"))
    tarballs = sorted(backups.glob("media-*.tar.gz"))
    assert len(dumps) == 1 and len(tarballs) == 1
    assert not expired.exists(), "backups older than --keep-days are removed"

    restored_media = stack.root / "restored-media"
    run_checked(
        [
            str(DEPLOY / "restore.sh"),
            "--dump", str(dumps[0]),
            "--media", str(tarballs[0]),
            "--database-url", database_url(SCRATCH_DB),
            "--media-root", str(restored_media),
        ]
    )  # fmt: skip

    live, restored = table_counts(STACK_DB, stack), table_counts(SCRATCH_DB, stack)
    assert live.keys() == restored.keys()
    assert votes_before <= restored["validation_vote"] <= votes_after
    # Tables that voting does not touch are identical; the vote tallies are consistent with
    # the votes in the dump, that is, the dump is one snapshot.
    for table in ("labels_label", "donations_image", "auth_user", "django_migrations"):
        assert restored[table] == live[table], table
    tallies = pair_tallies(SCRATCH_DB, stack)
    assert sum(row[1] + row[2] for row in tallies) > 0
    for pair, num_yes, num_no, yes_votes, no_votes in tallies:
        assert (num_yes, num_no) == (yes_votes, no_votes), f"pair {pair}"
    # backup.sh saves MEDIA_ROOT (the bucket is backed up by the store's own tools).
    media_root = Path(stack.env["HOME"]) / "data" / "media"
    assert media_files(restored_media) == media_files(media_root)


def test_nginx_answers_429_when_a_client_floods_the_donation_page(stack):
    markers = [f"flood-{number}-{secrets.token_hex(3)}" for number in range(20)]
    start = threading.Barrier(len(markers))

    def visit(marker: str) -> Response:
        start.wait()
        return stack.request(f"/donate?probe={marker}")

    with ThreadPoolExecutor(max_workers=len(markers)) as pool:
        responses = list(pool.map(visit, markers))
    refused = [
        marker
        for marker, response in zip(markers, responses, strict=True)
        if response.status == 429
    ]
    assert len(refused) >= 10, [response.status for response in responses]
    assert {response.status for response in responses} == {200, 429}
    stack.assert_gunicorn_never_saw(*refused)


def test_redis_asks_for_a_password_and_holds_no_session_id_and_no_pickle(stack):
    anonymous = redis.Redis(unix_socket_path=str(stack.redis_socket))
    with contextlib.closing(anonymous), pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    cookies = stack.login()
    for path in ("/", "/statistics"):  # pages that cache what they computed
        assert stack.request(path, cookies=cookies).status == 200
    session = cookies[next(name for name in cookies if name.endswith("sessionid"))]
    with contextlib.closing(redis.Redis.from_url(stack.redis_url)) as app:
        # The app's user cannot reconfigure, empty or watch the server, nor reach other keys.
        for command in (("CONFIG", "GET", "*"), ("FLUSHALL",), ("KEYS", "*"), ("MONITOR",)):
            with pytest.raises(redis.exceptions.NoPermissionError):
                app.execute_command(*command)
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.set("elsewhere", "x")
        stored = {key: app.get(key) for key in app.scan_iter(count=1000)}
    assert any(b"home:counts" in key for key in stored), stored.keys()
    for key, value in stored.items():
        assert session.encode() not in key and session.encode() not in value, key
        if not value.lstrip(b"-").isdigit():  # counters are plain integers
            json.loads(value)  # everything else is JSON, never a pickle


def test_nginx_answers_429_to_a_client_guessing_admin_passwords(stack):
    guesser = "127.0.0.3"  # an address of its own: the other tests' sign-ins are not refused
    markers = [f"guess-{number}-{secrets.token_hex(3)}" for number in range(12)]
    responses = [
        stack.request(
            f"/admin/login/?probe={marker}",
            method="POST",
            body=urlencode({"username": "moderator", "password": marker}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            source=guesser,
        )
        for marker in markers
    ]
    refused = [
        marker
        for marker, response in zip(markers, responses, strict=True)
        if response.status == 429
    ]
    # 2 a minute with a burst of 5: the first six are let through, most of the rest are not.
    assert len(refused) >= 4, [response.status for response in responses]
    assert all(response.status in (403, 429) for response in responses)
    stack.assert_gunicorn_never_saw(*refused)
    # Showing the form is not an attempt: the same address still gets the page.
    assert stack.request("/admin/login/", source=guesser).status == 200


def test_a_stalled_export_reader_holds_no_gunicorn_thread(stack):
    query = urlencode(
        {"query": " | ".join(stack.data["export_labels"]), "format": "tar", "min_probability": 0}
    )
    size = len(stack.request(f"/v1/export?{query}").body)
    assert size > 6 * MB, size  # more than socket buffers between gunicorn and a reader hold
    threads = WORKERS * THREADS
    markers = [f"slow-{number}-{secrets.token_hex(3)}" for number in range(threads)]
    readers = []
    try:
        # As many readers as gunicorn has threads, each from an address of its own, each with
        # a tiny receive window, and none reads a byte.
        for number, marker in enumerate(markers):
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(20)
            raw.bind((f"127.0.0.{10 + number}", 0))
            raw.connect(("127.0.0.1", stack.https_port))
            reader = stack.tls.wrap_socket(raw, server_hostname=SITE)
            readers.append(reader)
            reader.sendall(
                f"GET /v1/export?{query}&probe={marker} HTTP/1.1\r\n"
                f"Host: {SITE}:{stack.https_port}\r\nConnection: close\r\n\r\n".encode()
            )
        # gunicorn logs a request once it has sent the whole answer: nginx takes each export
        # in full while its reader stalls, so every thread is free again...
        held = set(markers)
        deadline = time.monotonic() + 30
        while held and time.monotonic() < deadline:
            held = {marker for marker in held if not stack.gunicorn_lines(marker)}
            time.sleep(0.1)
        assert not held, f"{len(held)} of {threads} gunicorn threads held by stalled readers"
        # ...the site answers others, and the readers still get their downloads.
        assert stack.request("/healthz").status == 200
        for reader in readers:
            assert reader.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        for reader in readers:
            reader.close()


# --- Two app hosts and a replica -----------------------------------------------------------


def on_replica(query: str, stack: Stack, params=None, user: str = "imagemonkey") -> list[tuple]:
    # The cluster's superuser (postgres) has the same password (tools/services.sh).
    conf = db_server() | {"HOST": str(stack.root / "db" / "pg-replica" / "run"), "USER": user}
    with contextlib.closing(connect(STACK_DB, conf)) as connection, connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def replica_reads(stack: Stack) -> int:
    """Rows the replica has handed out from the stack's database (its own statistics)."""
    (count,) = on_replica(
        "SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = %s",
        stack,
        [STACK_DB],
    )[0]
    return count


def wait_until_replayed(stack: Stack) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    (lsn,) = stack.sql("SELECT pg_current_wal_lsn()::text")[0]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if on_replica("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", stack, [lsn])[0][0]:
            return
        time.sleep(0.05)
    pytest.fail("the replica did not catch up within 20 s")


def yes_votes_shown(page: Response) -> int:
    """The yes count of the dog row on a picture's page."""
    found = re.search(rb'<th scope="row">dog</th><td class="num">(\d+)</td>', page.body)
    assert found, page.body[:3000]
    return int(found[1])


def test_browse_reads_go_to_the_replica_under_the_application_name_of_its_url(stack):
    before = replica_reads(stack)
    # A query parameter the page does not read: rendered afresh, not from the page cache.
    for number in range(10):
        assert stack.request(f"/browse?label=dog&probe=replica-{number}").status == 200
        assert stack.request(f"/image/{stack.data['public'][0]}?n={number}").status == 200
    deadline = time.monotonic() + 10  # the statistics reach the view within a second or so
    while replica_reads(stack) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert replica_reads(stack) > before
    readers = on_replica(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
        stack,
        [REPLICA_APPLICATION, STACK_DB],
    )[0][0]
    assert readers >= 1
    # The primary serves no reader under that name: nothing of it reads there.
    assert stack.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        params=[REPLICA_APPLICATION],
    ) == [(0,)]


def test_a_voter_sees_their_vote_at_once_while_the_replica_is_behind(stack):
    image = stack.data["public"][1]
    token = stack.data["fresh_tokens"][0]
    voter, other = "127.0.0.61", "127.0.0.62"
    wait_until_replayed(stack)
    on_replica("SELECT pg_wal_replay_pause()", stack, user="postgres")
    try:
        before = yes_votes_shown(stack.request(f"/image/{image}", source=other))
        task = stack.task(source=voter, headers={"X-Voter-Token": token})
        while task["uuid"] != image:  # the one picture this check looks at
            skipped = stack.vote(task["uuid"], "no", task["ticket"], source=voter,
                                 headers={"X-Voter-Token": token})  # fmt: skip
            assert skipped.status == 200, skipped.body
            task = stack.task(source=voter, headers={"X-Voter-Token": token})
        answer = stack.vote(image, "yes", task["ticket"], source=voter,
                            headers={"X-Voter-Token": token})  # fmt: skip
        assert answer.status == 200, answer.body
        # The voter reads on the primary: their vote is on the page at once...
        mine = stack.request(f"/image/{image}?after-vote=1", source=voter)
        assert yes_votes_shown(mine) == before + 1
        # ...while a visitor who wrote nothing still reads on the replica, held back.
        theirs = stack.request(f"/image/{image}?after-vote=2", source=other)
        assert yes_votes_shown(theirs) == before
    finally:
        on_replica("SELECT pg_wal_replay_resume()", stack, user="postgres")
    wait_until_replayed(stack)
    later = stack.request(f"/image/{image}?after-vote=3", source=other)
    assert yes_votes_shown(later) == before + 1


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = secrets.token_hex(8)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def sign_in(stack: Stack, form_from: AppHost, post_to: AppHost) -> dict[str, str]:
    page = stack.direct(form_from, "/admin/login/")
    cookies = set_cookies(page)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)[1].decode()
    origin = f"https://{SITE}:{stack.https_port}"
    answer = stack.direct(
        post_to,
        "/admin/login/?next=/admin/",
        method="POST",
        body=urlencode(
            {
                "username": "moderator",
                "password": stack.moderator_password,
                "csrfmiddlewaretoken": token,
                "next": "/admin/",
            }
        ).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin,
            "Referer": f"{origin}/admin/login/",
        },
        cookies=cookies,
    )
    assert answer.status == 302, answer.body[:2000]
    return cookies | set_cookies(answer)


def test_a_session_and_its_csrf_token_work_across_both_hosts(stack):
    host_a, host_b = stack.hosts
    cookies = sign_in(stack, form_from=host_a, post_to=host_b)
    for host in (host_a, host_b):
        assert stack.direct(host, "/admin/", cookies=cookies).status == 200
    # A form's token from one host is good on the other; without it, both refuse.
    queue = stack.direct(host_b, "/admin/donations/image/queue/", cookies=cookies)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', queue.body)[1].decode()
    origin = f"https://{SITE}:{stack.https_port}"
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin}
    refused = stack.direct(host_a, "/admin/donations/image/queue/", method="POST",
                           body=b"decision=approve", headers=form, cookies=cookies)  # fmt: skip
    assert refused.status == 403
    accepted = stack.direct(
        host_a,
        "/admin/donations/image/queue/",
        method="POST",
        body=urlencode({"decision": "approve", "csrfmiddlewaretoken": token}).encode(),
        headers=form,
        cookies=cookies,
    )
    assert accepted.status == 302  # back to the queue ("select at least one picture")


def test_a_photo_donated_through_one_host_is_moderated_through_the_other_and_served(stack):
    from tests.helpers import photo_bytes

    host_a, host_b = stack.hosts
    body, content_type = multipart(photo_bytes(300, 200, color=(secrets.randbelow(255), 90, 30)))
    donated = stack.direct(host_a, "/v1/donate", method="POST", body=body,
                           headers={"Content-Type": content_type}, address="127.0.0.71")  # fmt: skip
    assert donated.status == 200, donated.body
    uuid = donated.json()["uuid"]
    # A wrote its three renditions to private/ of the bucket...
    stored = [key for key in stack.s3.keys(stack.bucket) if uuid in key]
    assert len(stored) == 3 and all(key.startswith("private/") for key in stored), stored
    (master,) = [key for key in stored if key.startswith(f"private/{uuid[:2]}/{uuid}.")]
    private = stack.object(master)
    assert requests.get(stack.bucket_url(master), timeout=10).status_code == 403
    cookies = sign_in(stack, form_from=host_b, post_to=host_b)
    pending = stack.direct(host_b, f"/moderation/file/{uuid}/master", cookies=cookies)
    assert pending.status == 200, pending.body[:500]  # ...and B reads it from there
    assert pending.header("X-Accel-Redirect") is None and pending.body == private
    assert pending.header("Cache-Control") == "private, no-store"
    queue = stack.direct(host_b, "/admin/donations/image/queue/", cookies=cookies)
    assert uuid.encode() in queue.body
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', queue.body)[1].decode()
    origin = f"https://{SITE}:{stack.https_port}"
    decided = stack.direct(
        host_b,
        "/admin/donations/image/queue/?show=pending",
        method="POST",
        body=urlencode(
            {"decision": "approve", "selected": uuid, "csrfmiddlewaretoken": token}
        ).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin},
        cookies=cookies,
    )
    assert decided.status == 302
    page = stack.request(f"/image/{uuid}?fresh=1")
    assert page.status == 200
    # The page names the picture at the bucket's public URL, and lets browsers load it there.
    display = re.search(rf'<img src="([^"]+/{uuid}-[^"]+)"'.encode(), page.body)[1].decode()
    assert display.startswith(stack.bucket_url("public/")), display
    csp = page.header("Content-Security-Policy")
    assert stack.s3.endpoint in re.search(r"img-src ([^;]+)", csp)[1].split(), csp
    picture = requests.get(display, timeout=10)
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/jpeg"
    assert picture.content == stack.object(display.removeprefix(stack.bucket_url("")))
    # Nothing of it is on either host's disk, and host B has no picture at all there.
    for host in (host_a, host_b):
        assert not list(stack.media_root(host).rglob(f"*{uuid}*")), host.name
    assert not [path for path in stack.media_root(host_b).rglob("*") if path.is_file()]


def test_the_vote_limit_is_exact_across_both_hosts(stack):
    address = "127.0.0.81"
    tasks = [stack.task(source="127.0.0.82") for _ in range(3 * VOTE_LIMIT)]
    start = threading.Barrier(len(tasks))

    def vote(numbered) -> Response:
        number, task = numbered
        host = stack.hosts[number % 2]
        start.wait()
        return stack.direct(
            host,
            f"/v1/donation/{task['uuid']}/validate/yes",
            method="POST",
            body=json.dumps({"label": "dog", "sublabel": "", "ticket": task["ticket"]}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            address=address,
        )

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        statuses = sorted(response.status for response in pool.map(vote, enumerate(tasks)))
    assert statuses == [200] * VOTE_LIMIT + [429] * (2 * VOTE_LIMIT), statuses


def test_stopping_the_replica_changes_nothing_visible(stack):
    paths = [f"/browse?label=dog&probe=stop-{secrets.token_hex(3)}", "/labels", "/statistics",
             f"/image/{stack.data['public'][2]}?stop=1"]  # fmt: skip

    def pages() -> list[bytes]:
        bodies = []
        for path in paths:
            response = stack.request(path, source="127.0.0.91")
            assert response.status == 200, (path, response.status, response.body[:500])
            bodies.append(re.sub(rb'value="[^"]{64}"', b"", response.body))  # CSRF tokens
        return bodies

    wait_until_replayed(stack)
    seen = pages()
    run_checked([str(ROOT / "tools" / "services.sh"), "replica-stop"],
                env={**os.environ, "DATA_DIR": str(stack.root / "db")})  # fmt: skip
    for _ in range(3):  # every host and worker finds its replica gone, within each request
        assert pages() == seen


def test_killing_one_host_mid_load_loses_no_accepted_request(stack):
    host_a, host_b = stack.hosts
    token = stack.data["fresh_tokens"][1]
    stop_load = threading.Event()
    outcomes: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def browse(number: int) -> None:
        while not stop_load.is_set():
            path = f"/browse?label=dog&probe=kill-{number}-{secrets.token_hex(3)}"
            try:
                status = stack.request(path, source=f"127.0.1.{number}").status
            except (OSError, http.client.HTTPException):
                status = 0
            with lock:
                outcomes.append(("GET", status, path))

    def votes() -> None:
        while not stop_load.is_set():
            try:
                task = stack.task(source="127.0.2.1", headers={"X-Voter-Token": token})
            except AssertionError:
                return  # nothing left to vote on
            try:
                status = stack.vote(task["uuid"], "yes", task["ticket"], source="127.0.2.1",
                                    headers={"X-Voter-Token": token}).status  # fmt: skip
            except (OSError, http.client.HTTPException):
                status = 0
            with lock:
                outcomes.append(("POST", status, task["uuid"]))

    threads = [threading.Thread(target=browse, args=(n,)) for n in range(1, 5)]
    threads.append(threading.Thread(target=votes))
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        os.killpg(host_a.process.pid, signal.SIGKILL)  # the host is gone, mid-request
        host_a.process.wait(timeout=10)
        killed_at = len(outcomes)
        time.sleep(2)
    finally:
        stop_load.set()
        for thread in threads:
            thread.join(30)
    assert killed_at > 0 and len(outcomes) > killed_at
    gets = [status for method, status, _ in outcomes if method == "GET"]
    assert gets and set(gets) == {200}, sorted(set(gets))
    # Every vote that was answered 200 is stored, once; a vote cut off on the dying host was
    # not sent again (nginx retries no POST that reached a host), and its client was told.
    accepted = [uuid for method, status, uuid in outcomes if method == "POST" and status == 200]
    assert accepted
    stored = stack.sql(
        "SELECT i.uuid::text FROM validation_vote v "
        "JOIN validation_imagelabel p ON p.id = v.pair_id "
        "JOIN donations_image i ON i.id = p.image_id "
        "JOIN validation_voter t ON t.id = v.voter_id WHERE t.token_sha256 = %s",
        params=[hashlib.sha256(token.encode()).hexdigest()],
    )
    assert sorted(uuid for (uuid,) in stored) == sorted(accepted)
    assert {status for method, status, _ in outcomes if method == "POST"} <= {200, 502}
    # Host B serves on, and was answering after the kill.
    assert stack.request("/healthz").status == 200
    late = outcomes[killed_at:]
    assert any(status == 200 for _, status, _ in late)
