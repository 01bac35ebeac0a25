"""deploy/ without a running stack: the rendered nginx configuration passes `nginx -t`,
install.sh --dry-run runs through without changing the machine, the firewall rules load,
and production settings pass Django's deployment check.

The helpers at the top are shared with tests/test_stack.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from donations.storage import PUBLIC_FILE_CACHE_CONTROL

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SCRIPTS = ["install.sh", "update.sh", "backup.sh", "restore.sh", "lib.sh", "with-env"]


def load_render():
    spec = importlib.util.spec_from_file_location("deploy_render", DEPLOY / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


render = load_render()


def is_root() -> bool:
    return os.geteuid() == 0


def debian_tool(command: str, package: str) -> str:
    """The path of a Debian tool, installed with apt-get when missing and we are root."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found:
        return found
    if not (is_root() and shutil.which("apt-get")):
        pytest.skip(
            f"{command} is missing: `apt-get install {package}` (done automatically as root)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    assert found, f"apt-get installed {package} but {command} is still missing"
    return found


def self_signed_certificate(folder: Path, *names: str) -> tuple[Path, Path]:
    openssl = debian_tool("openssl", "openssl")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={names[0]}",
            "-addext", "subjectAltName=" + ",".join(f"DNS:{name}" for name in names),
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def render_config(out: Path, **variables: str) -> Path:
    """Render with deploy/render.py's command line, exactly as install.sh calls it."""
    args = [arg for name, value in variables.items() for arg in ("--var", f"{name}={value}")]
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "render.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return out


def local_nginx_variables(folder: Path, cert: Path, key: Path) -> dict[str, str]:
    """Only paths differ from production: logs, pid and temp files in a scratch folder."""
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "local" / "temp").mkdir(parents=True, exist_ok=True)
    return {
        "ssl_certificate": str(cert),
        "ssl_certificate_key": str(key),
        "log_dir": str(folder / "logs"),
        "snippets_dir": str(folder / "rendered" / "nginx"),
        "local_prefix": str(folder / "local"),
        "page_cache_dir": str(folder / "local" / "page-cache"),
        # A master running as root hands the work to an unprivileged user.
        "local_user": "nobody nogroup" if is_root() else "",
    }


def nginx_test(folder: Path) -> subprocess.CompletedProcess:
    nginx = debian_tool("nginx", "nginx")
    return subprocess.run(
        [
            nginx, "-t", "-p", str(folder / "local"),
            "-c", str(folder / "rendered" / "nginx" / "local.conf"),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip


def server_block(config: str, start: str) -> str:
    """The text of the block that opens with `start`, up to its closing brace."""
    begin = config.index(start)
    depth, quoted = 0, False
    for position in range(begin, len(config)):
        character = config[position]
        if character == '"':
            quoted = not quoted  # braces inside a quoted regex are not blocks
        elif not quoted and character in "{}":
            depth += 1 if character == "{" else -1
            if depth == 0:
                return config[begin : position + 1]
    raise AssertionError(f"unclosed block {start!r}")


# --- nginx ---------------------------------------------------------------------------------


def unprivileged_listen() -> dict[str, str]:
    """`nginx -t` binds the listen addresses, and only root may bind ports 80 and 443: an
    ordinary user tests the same site on two free high ports (IPv4 and IPv6 alike)."""
    if is_root():
        return {}
    with socket.socket() as http, socket.socket() as https:
        for probe in (http, https):
            probe.bind(("127.0.0.1", 0))
        ports = {"http": http.getsockname()[1], "https": https.getsockname()[1]}
    return {f"{kind}_listen": f"{port} [::]:{port}" for kind, port in ports.items()}


@pytest.fixture
def rendered(tmp_path):
    cert, key = self_signed_certificate(tmp_path / "tls", "example.org", "api.example.org")
    variables = local_nginx_variables(tmp_path, cert, key) | unprivileged_listen()
    render_config(
        tmp_path / "rendered",
        server_name="example.org",
        api_server_name="api.example.org",
        trusted_proxies="10.0.0.0/8 192.0.2.7",
        **variables,
    )
    return tmp_path


def test_the_production_site_passes_nginx_t(rendered):
    # Production listen addresses (80, 443, IPv6), Debian's http-block settings around it.
    result = nginx_test(rendered)
    assert result.returncode == 0, result.stderr


def test_it_serves_media_and_private_files_without_executing_anything(rendered):
    config = (rendered / "rendered" / "nginx" / "imagemonkey.conf").read_text()
    media = server_block(config, 'location ~ "^/media/')
    private = server_block(config, "location ^~ /_private/")
    for block in (media, private):
        assert not re.search(r"\b(proxy|fastcgi|uwsgi|scgi)_pass\b", block)
        assert "default-src 'none'; sandbox" in block
        assert "imagemonkey-file-headers.conf" in block
    assert "internal;" in private
    assert r"\.(?:jpg|png))$" in media
    assert f'"~^/media/" "{PUBLIC_FILE_CACHE_CONTROL}";' in config  # the app's own lifetime
    headers = (rendered / "rendered" / "nginx" / "imagemonkey-file-headers.conf").read_text()
    assert "X-Content-Type-Options nosniff always" in headers
    assert "Strict-Transport-Security" in headers


def test_it_trusts_forwarded_addresses_only_from_listed_proxies(rendered):
    config = (rendered / "rendered" / "nginx" / "imagemonkey.conf").read_text()
    assert "set_real_ip_from 10.0.0.0/8;" in config
    assert "set_real_ip_from 192.0.2.7/32;" in config
    assert config.count("set_real_ip_from") == 2
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in config
    assert "proxy_set_header X-Real-IP $remote_addr;" in config


def test_without_trusted_proxies_it_ignores_x_forwarded_for(tmp_path):
    render_config(tmp_path, server_name="example.org")
    config = (tmp_path / "nginx" / "imagemonkey.conf").read_text()
    assert "set_real_ip_from" not in config
    assert "real_ip_header" not in config


def test_one_app_host_is_this_hosts_socket_and_is_never_marked_down(tmp_path):
    render_config(tmp_path, server_name="example.org")
    config = (tmp_path / "nginx" / "imagemonkey.conf").read_text()
    upstream = server_block(config, "upstream imagemonkey_app {")
    assert re.findall(r"^\s*server .*$", upstream, re.MULTILINE) == [
        "    server unix:/run/imagemonkey/gunicorn.sock fail_timeout=0;"
    ]


def test_several_app_hosts_share_the_load_and_only_repeatable_requests_are_retried(tmp_path):
    render_config(tmp_path, server_name="example.org", app_servers="10.0.0.11:8000, 10.0.0.12:8000")
    config = (tmp_path / "nginx" / "imagemonkey.conf").read_text()
    upstream = server_block(config, "upstream imagemonkey_app {")
    assert re.findall(r"^\s*server .*$", upstream, re.MULTILINE) == [
        "    server 10.0.0.11:8000 max_fails=1 fail_timeout=10s;",
        "    server 10.0.0.12:8000 max_fails=1 fail_timeout=10s;",
    ]
    assert "proxy_next_upstream error timeout http_502;" in config
    # nginx sends a POST that reached a host to no other one: a vote is never stored twice.
    assert not re.search(r"^\s*proxy_next_upstream .*non_idempotent", config, re.MULTILINE)
    assert "non_idempotent" not in config


# --- nginx's micro-cache of public pages -----------------------------------------------------


class FakeApp:
    """An app host that counts what reaches it and answers each path as the test says."""

    ANSWERS = {
        "/page": [("X-Accel-Expires", "10")],  # what people/pagecache.py offers nginx
        "/sets-cookie": [("X-Accel-Expires", "10"), ("Set-Cookie", "csrftoken=abc; Path=/")],
        "/public": [("Cache-Control", "public, max-age=3600")],  # no X-Accel-Expires
    }

    def __init__(self):
        import http.server
        import threading

        app = self
        self.seen: list[tuple[str, str, dict]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                app.seen.append((self.command, self.path, dict(self.headers)))
                body = f"answer {len(app.seen)}".encode()
                self.send_response(200)
                for name, value in app.ANSWERS.get(self.path, []):
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reached(self, path: str) -> int:
        return sum(1 for _, seen, _ in self.seen if seen == path)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@pytest.fixture
def micro_cache(tmp_path):
    """The rendered site in a real nginx, in front of a FakeApp; yields (get, app)."""
    import http.client
    import ssl
    import time

    nginx = debian_tool("nginx", "nginx")
    app = FakeApp()
    cert, key = self_signed_certificate(tmp_path / "tls", "example.org")
    http_port, https_port = free_ports(2)
    # The workers (nobody's, under root) write the cache: outside pytest's folders (0700),
    # in a folder that nginx makes itself, as in production.
    page_cache = Path(tempfile.mkdtemp(prefix="imagemonkey-page-cache-"))
    page_cache.chmod(0o755)
    render_config(
        tmp_path / "rendered",
        server_name="example.org",
        app_servers=f"127.0.0.1:{app.port}",
        http_listen=f"127.0.0.1:{http_port}",
        https_listen=f"127.0.0.1:{https_port}",
        **local_nginx_variables(tmp_path, cert, key) | {"page_cache_dir": f"{page_cache}/pages"},
    )
    command = [
        nginx, "-p", str(tmp_path / "local"),
        "-c", str(tmp_path / "rendered" / "nginx" / "local.conf"), "-g", "daemon off;",
    ]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True)
    tls = ssl.create_default_context(cafile=str(cert))

    class Connection(http.client.HTTPSConnection):
        def connect(self):  # the site's name in SNI: the default server refuses others
            plain = socket.create_connection((self.host, self.port), self.timeout)
            self.sock = self._context.wrap_socket(plain, server_hostname="example.org")

    def get(path: str, method: str = "GET", **headers: str) -> tuple[str, dict]:
        connection = Connection("127.0.0.1", https_port, context=tls, timeout=10)
        try:
            body = b"" if method == "POST" else None
            connection.request(method, path, body=body, headers={"Host": "example.org"} | headers)
            response = connection.getresponse()
            return response.read().decode(), dict(response.getheaders())
        finally:
            connection.close()

    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                get("/warm-up")
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)
        yield get, app
    finally:
        server.terminate()
        server.wait(timeout=10)
        app.server.shutdown()
        shutil.rmtree(page_cache, ignore_errors=True)


def test_nginx_answers_a_page_offered_by_the_app_from_its_cache(micro_cache):
    get, app = micro_cache
    first, headers = get("/page")
    assert get("/page")[0] == first
    assert get("/page?other=1")[0] != first  # the query is part of the key
    assert app.reached("/page") == 1
    assert "X-Accel-Expires" not in headers  # the app's word for nginx only


def test_nginx_never_answers_from_its_cache_nor_stores_for_a_cookie_or_a_token(micro_cache):
    get, app = micro_cache
    cached = get("/page")[0]
    for personal in (
        {"Cookie": "sessionid=abc"},
        {"Cookie": "csrftoken=abc"},
        {"Authorization": "Bearer abc"},
        {"X-Voter-Token": "abc"},
        {"X-Api-Token": "abc"},
    ):
        own = get("/page", **personal)[0]
        assert own != cached, personal  # from the app, with what the visitor sent
        assert app.seen[-1][2].get(next(iter(personal))) == next(iter(personal.values()))
        assert get("/page")[0] == cached, personal  # and theirs was not stored for others
    assert app.reached("/page") == 6


def test_nginx_never_stores_an_answer_that_sets_a_cookie(micro_cache):
    get, app = micro_cache
    first, headers = get("/sets-cookie")
    assert headers.get("Set-Cookie", "").startswith("csrftoken=")
    assert get("/sets-cookie")[0] != first
    assert app.reached("/sets-cookie") == 2


def test_nginx_stores_only_what_the_app_offers_and_only_for_get(micro_cache):
    get, app = micro_cache
    assert get("/public")[0] != get("/public")[0]  # Cache-Control alone is not an offer
    assert get("/other")[0] != get("/other")[0]  # nor is silence
    assert get("/page", method="POST")[0] != get("/page", method="POST")[0]
    assert (app.reached("/public"), app.reached("/other"), app.reached("/page")) == (2, 2, 2)


def test_the_bench_measures_the_micro_cache_deploy_renders(tmp_path):
    from bench.micro_cache import CACHE_DIRECTIVES

    render_config(tmp_path, server_name="example.org")
    config = (tmp_path / "nginx" / "imagemonkey.conf").read_text()
    pages = server_block(config, "location / {\n        proxy_cache")
    for line in CACHE_DIRECTIVES.strip().splitlines():
        assert line.strip() in pages, line


@pytest.mark.parametrize("servers", ["10.0.0.11", "unix:relative.sock", "10.0.0.1:80; foo"])
def test_it_refuses_app_servers_that_are_not_addresses(tmp_path, servers):
    with pytest.raises(render.RenderError):
        render.render({"server_name": "example.org", "app_servers": servers}, tmp_path)


def test_the_upload_limit_follows_max_upload_mb_with_room_for_form_fields(tmp_path):
    render_config(tmp_path, server_name="example.org", max_upload_mb="5")
    config = (tmp_path / "nginx" / "imagemonkey.conf").read_text()
    donate = server_block(config, "location = /donate {")
    api_donate = server_block(config, "location = /v1/donate {")
    assert "client_max_body_size 6m;" in donate
    assert "client_max_body_size 6m;" in api_donate
    assert "client_max_body_size 3m;" in config  # everywhere else


def test_a_certificate_path_follows_the_domain_by_default(tmp_path):
    render_config(tmp_path, server_name="example.org")
    config = (tmp_path / "nginx" / "imagemonkey.conf").read_text()
    assert "ssl_certificate /etc/letsencrypt/live/example.org/fullchain.pem;" in config
    assert "ssl_certificate_key /etc/letsencrypt/live/example.org/privkey.pem;" in config
    assert "return 301 https://$host$request_uri;" in config


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("server_name", "example.org; include /etc/shadow"),
        ("server_name", "example.org\nlocation / {}"),
        ("media_root", "/var/lib/im media"),
        ("media_root", "relative/path"),
        ("vote_rate", "5r/s; allow all"),
        ("trusted_proxies", "0.0.0.0/0;"),
        ("https_listen", "443 ssl"),
        ("max_upload_mb", "20m"),
    ],
)
def test_it_refuses_values_that_are_not_what_they_claim(tmp_path, name, value):
    variables = {"server_name": "example.org", name: value}
    with pytest.raises(render.RenderError):
        render.render(variables, tmp_path)
    assert not (tmp_path / "nginx").exists()


def test_it_refuses_unknown_and_missing_variables(tmp_path):
    with pytest.raises(render.RenderError, match="unknown variable"):
        render.render({"server_name": "example.org", "sever_name": "x"}, tmp_path)
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "render.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "server_name is required" in result.stderr


def test_it_renders_supervisor_and_the_daily_jobs(tmp_path):
    render_config(tmp_path, server_name="example.org")
    program = (tmp_path / "supervisor" / "imagemonkey.conf").read_text()
    assert (
        "command=/home/imagemonkey/app/deploy/with-env /etc/imagemonkey/env "
        "/home/imagemonkey/app/.venv/bin/gunicorn imagemonkey.wsgi "
        "-c /home/imagemonkey/app/deploy/gunicorn.conf.py"
    ) in program
    assert "user=imagemonkey" in program
    orphans = (tmp_path / "systemd" / "imagemonkey-orphans.service").read_text()
    assert "manage.py orphans" in orphans
    backup = (tmp_path / "systemd" / "imagemonkey-backup.service").read_text()
    assert "--dest /var/backups/imagemonkey --keep-days 14" in backup
    clearsessions = (tmp_path / "systemd" / "imagemonkey-clearsessions.service").read_text()
    assert (
        "ExecStart=/home/imagemonkey/app/deploy/with-env /etc/imagemonkey/env "
        "/home/imagemonkey/app/.venv/bin/python manage.py clearsessions"
    ) in clearsessions
    assert "User=imagemonkey" in clearsessions
    assert "WorkingDirectory=/home/imagemonkey/app" in clearsessions
    purge = (tmp_path / "systemd" / "imagemonkey-purge-rejected.service").read_text()
    assert "manage.py purge_rejected" in purge and "User=imagemonkey" in purge
    for timer in (
        "imagemonkey-orphans.timer",
        "imagemonkey-backup.timer",
        "imagemonkey-clearsessions.timer",
        "imagemonkey-purge-rejected.timer",
    ):
        timer_text = (tmp_path / "systemd" / timer).read_text()
        assert "Persistent=true" in timer_text and "OnCalendar=" in timer_text, timer


def test_redis_lets_in_only_the_app_with_its_password(tmp_path):
    digest = hashlib.sha256(b"s3cret-Redis-pw").hexdigest()
    render_config(tmp_path, server_name="example.org", redis_password_sha256=digest)
    users = (tmp_path / "redis" / "imagemonkey.conf").read_text()
    directives = [line for line in users.splitlines() if line and not line.startswith("#")]
    assert directives == [
        "user default off",
        f"user imagemonkey on #{digest} ~im:* resetchannels +@all -@admin -@dangerous",
    ]
    assert "s3cret-Redis-pw" not in users
    # Without a password the app's user is off too: nobody gets in.
    render_config(tmp_path / "none", server_name="example.org")
    users = (tmp_path / "none" / "redis" / "imagemonkey.conf").read_text()
    assert "user imagemonkey off" in users and " on " not in users


# --- gunicorn's settings (also used by `make run`) -----------------------------------------


def gunicorn_settings(**env: str) -> dict:
    code = (
        "import json, runpy; c = runpy.run_path('deploy/gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'timeout')}))"
    )
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_gunicorn_binds_loopback_for_make_run_and_the_socket_in_production():
    assert gunicorn_settings(PORT="8123")["bind"] == "127.0.0.1:8123"
    production = gunicorn_settings(
        GUNICORN_BIND="unix:/run/imagemonkey/gunicorn.sock", WORKERS="4", GUNICORN_TIMEOUT="30"
    )
    assert production == {
        "bind": "unix:/run/imagemonkey/gunicorn.sock",
        "workers": 4,
        "timeout": 30,
    }


def test_gunicorn_makes_its_socket_for_owner_and_group_only():
    code = "import runpy; print(oct(runpy.run_path('deploy/gunicorn.conf.py')['umask']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "0o117", result.stderr  # a socket of mode 0660


# --- install.sh and the other scripts ------------------------------------------------------

WATCHED = [
    "/etc/imagemonkey",
    "/home/imagemonkey",
    "/var/lib/imagemonkey",
    "/var/log/imagemonkey",
    "/var/backups/imagemonkey",
    "/var/www/letsencrypt",
    "/etc/nginx/sites-enabled",
    "/etc/nginx/sites-available",
    "/etc/nginx/snippets",
    "/etc/supervisor/conf.d",
    "/etc/systemd/system",
    "/etc/tmpfiles.d",
    "/etc/iptables",
    "/etc/ssh/sshd_config.d",
    "/etc/letsencrypt",
    "/etc/passwd",
    "/etc/group",
]


def machine_state() -> dict:
    state = {}
    for name in WATCHED:
        path = Path(name)
        if not path.exists():
            state[name] = None
        elif path.is_dir():
            state[name] = sorted((child.name, child.stat().st_mtime_ns) for child in path.iterdir())
        else:
            state[name] = path.stat().st_mtime_ns
    return state


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--dry-run", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_install_dry_run_prints_every_step_and_changes_nothing():
    before = machine_state()
    result = dry_run(
        "--domain", "example.org", "--api-domain", "api.example.org",
        "--email", "admin@example.org", "--harden-ssh", "--trusted-proxy", "10.1.0.0/16",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = [
        "apt-get install -y -q --no-install-recommends postgresql redis-server nginx supervisor certbot",
        "iptables-persistent",
        "libseccomp2",
        "useradd --system --create-home --home-dir /home/imagemonkey",
        "usermod -a -G imagemonkey www-data",
        "install -d -o imagemonkey -g www-data -m 750 /var/lib/imagemonkey/media/private",
        "CREATE ROLE imagemonkey LOGIN PASSWORD '<generated>'",
        "createdb --owner imagemonkey --encoding UTF8 imagemonkey",
        "clone --quiet --no-checkout /",
        "checkout --quiet --force --detach",
        "/home/imagemonkey/app/tools/bootstrap.sh",
        "write /etc/imagemonkey/env (owner imagemonkey, mode 600)",
        "manage.py migrate --no-input",
        "manage.py populate_labels",
        "manage.py make_groups",
        "manage.py collectstatic --no-input",
        "deploy/render.py --var server_name=example.org --var api_server_name=api.example.org",
        "--var trusted_proxies=10.1.0.0/16",
        "/etc/nginx/sites-available/imagemonkey",
        "rm -f /etc/nginx/sites-enabled/default",
        "nginx -t -q",
        "/etc/supervisor/conf.d/imagemonkey.conf",
        "supervisorctl update imagemonkey",
        "install -D -m 640 ",
        "/redis/imagemonkey.conf /etc/redis/imagemonkey.conf",
        "append to /etc/redis/redis.conf: include /etc/redis/imagemonkey.conf",
        "systemctl restart redis-server",
        "systemctl enable --now imagemonkey-orphans.timer imagemonkey-backup.timer "
        "imagemonkey-clearsessions.timer imagemonkey-purge-rejected.timer",
        "/etc/systemd/system/imagemonkey-purge-rejected.timer",
        "/etc/systemd/system/imagemonkey-clearsessions.service",
        "/etc/systemd/system/imagemonkey-clearsessions.timer",
        "certbot certonly --webroot -w /var/www/letsencrypt --cert-name example.org "
        "-d example.org -d api.example.org --email admin@example.org",
        "--var ssl_certificate=/etc/letsencrypt/live/example.org/fullchain.pem",
        "iptables-restore --test /home/imagemonkey/app/deploy/iptables/rules.v4",
        "iptables-restore /etc/iptables/rules.v4",
        "PermitRootLogin no",
        "ImageMonkey runs at https://example.org/",
    ]
    missing = [step for step in steps if step not in out]
    assert not missing, f"steps missing from the dry run: {missing}\n{out}"
    for line in [
        "HTTPS=1",
        "DEBUG=0",
        "ALLOWED_HOSTS=example.org,api.example.org",
        "CSRF_TRUSTED_ORIGINS=https://example.org,https://api.example.org",
        "RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP",
        "PRIVATE_MEDIA_X_ACCEL=1",
        "GUNICORN_BIND=unix:/run/imagemonkey/gunicorn.sock",
        "MAX_UPLOAD_MB=20",
        "SECRET_KEY=<generated>",
        "REDIS_URL=redis://imagemonkey:<generated>@127.0.0.1:6379/0",
    ]:
        assert re.search(rf"^\s+{re.escape(line)}$", out, re.MULTILINE), line
    assert machine_state() == before


def test_install_for_the_database_host_opens_postgresql_and_redis_to_the_app_hosts_only():
    before = machine_state()
    result = dry_run(
        "--role", "db", "--listen", "10.0.0.5", "--app-host", "10.0.1.0/24",
        "--app-host", "10.0.2.7", "--replica-host", "10.0.0.9",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in [
        "apt-get install -y -q --no-install-recommends postgresql redis-server iptables",
        "CREATE ROLE imagemonkey LOGIN PASSWORD '<generated>'",
        "createdb --owner imagemonkey --encoding UTF8 imagemonkey",
        "listen_addresses = 'localhost,10.0.0.5'",
        "/etc/systemd/system/postgresql@15-main.service.d/imagemonkey.conf",
        "/etc/systemd/system/redis-server.service.d/imagemonkey.conf",
        "ip -o address show to 10.0.0.5",
        "wal_level = replica",
        "host imagemonkey imagemonkey 10.0.1.0/24 scram-sha-256",
        "host imagemonkey imagemonkey 10.0.2.7 scram-sha-256",
        "host replication imagemonkey_replication 10.0.0.9 scram-sha-256",
        "CREATE ROLE imagemonkey_replication REPLICATION LOGIN PASSWORD '<generated>'",
        "/etc/redis/imagemonkey.conf",
        "bind 127.0.0.1 -::1 10.0.0.5",
        "DATABASE_URL=postgres://imagemonkey:<generated>@10.0.0.5:5432/imagemonkey",
        "REDIS_URL=redis://imagemonkey:<generated>@10.0.0.5:6379/0",
        "-A INPUT -s 10.0.1.0/24 -p tcp -m multiport --dports 5432,6379",
        "-A INPUT -s 10.0.0.9 -p tcp --dport 5432",
        "iptables-restore /etc/iptables/rules.v4",
    ]:
        assert step in out, step
    # A database host serves no pages and runs no app.
    for absent in ("nginx", "supervisor", "gunicorn", "manage.py", "certbot"):
        assert absent not in out, absent
    assert machine_state() == before


def test_install_for_an_app_host_uses_the_database_host_and_its_replicas():
    before = machine_state()
    result = dry_run(
        "--role", "app", "--domain", "example.org", "--email", "admin@example.org",
        "--database-url", "postgres://imagemonkey:secret@10.0.0.5:5432/imagemonkey",
        "--redis-url", "redis://imagemonkey:secret@10.0.0.5:6379/0",
        "--replica-url", "postgres://imagemonkey:secret@10.0.0.9:5432/imagemonkey",
        "--replica-url", "postgres://imagemonkey:secret@10.0.0.10:5432/imagemonkey",
        "--trusted-proxy", "10.0.0.2",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in [
        "DATABASE_URL=postgres://imagemonkey:secret@10.0.0.5:5432/imagemonkey",
        "REDIS_URL=redis://imagemonkey:secret@10.0.0.5:6379/0",
        "DATABASE_REPLICA_URLS=postgres://imagemonkey:secret@10.0.0.9:5432/imagemonkey,"
        "postgres://imagemonkey:secret@10.0.0.10:5432/imagemonkey",
    ]:
        assert re.search(rf"^\s+{re.escape(line)}$", out, re.MULTILINE), line
    for step in (
        "manage.py migrate --no-input",
        "/etc/nginx/sites-available/imagemonkey",
        "supervisorctl update imagemonkey",
        "iptables-restore /etc/iptables/rules.v4",
    ):
        assert step in out, step
    # No database or Redis of its own.
    packages = re.search(r"apt-get install -y -q --no-install-recommends (.*)$", out, re.M)[1]
    assert "postgresql " not in packages + " " and "redis-server" not in packages
    for absent in ("createdb", "CREATE ROLE", "/etc/redis/", "systemctl restart redis-server"):
        assert absent not in out, absent
    assert machine_state() == before


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--role", "web"], "--role takes all, app or db"),
        (["--role", "db", "--app-host", "10.0.0.0/24"], "--role db needs --listen"),
        (["--role", "db", "--listen", "10.0.0.5"], "at least one --app-host"),
        (
            ["--role", "db", "--listen", "10.0.0.5", "--app-host", "10.0.0.0/24; x"],
            "not an address",
        ),
        (["--role", "db", "--listen", "10.0.0.256", "--app-host", "10.0.1.0/24"], "--listen takes"),
        (
            ["--role", "db", "--listen", "10.0.0.5/24", "--app-host", "10.0.1.0/24"],
            "--listen takes",
        ),
        (["--role", "db", "--listen", "10.0.0.5", "--app-host", "10.0.1.0/33"], "not an address"),
        (["--role", "db", "--listen", "10.0.0.5", "--app-host", "fd00::1::2"], "not an address"),
        (["--role", "app", "--redis-url", "redis://x@h:6379/0"], "--role app needs --database-url"),
        (["--role", "app", "--database-url", "postgres://x@h/db"], "--role app needs --redis-url"),
    ],
)
def test_install_refuses_a_role_without_what_it_needs(args, reason):
    result = dry_run(*args)
    assert result.returncode != 0
    assert reason in result.stderr


def test_install_checks_a_db_hosts_addresses_before_python3_is_installed(tmp_path):
    # A fresh minimal Debian has no python3 until install.sh installs it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(folder).iterdir():
            if not tool.name.startswith("python") and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    result = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--dry-run", "--role", "db",
         "--listen", "10.0.0.5", "--app-host", "10.0.1.0/24", "--app-host", "fd00:1::/64"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(bin_dir)},
    )  # fmt: skip
    assert "Dry run:" in result.stdout, result.stderr
    assert "--listen takes" not in result.stderr and "not an address" not in result.stderr


@pytest.mark.parametrize(
    ("role", "present", "absent"),
    [
        ("all", ["postgresql", "redis-server", "nginx"], []),
        ("db", ["postgresql", "redis-server", "iptables-persistent"], ["nginx", "supervisor"]),
        ("app", ["nginx", "postgresql-client", "libseccomp2"], ["postgresql", "redis-server"]),
    ],
)
def test_print_packages_lists_what_the_role_installs(role, present, absent):
    # Whichever comes first: the fresh-host tests fetch these ahead, for a host offline.
    for args in (["--role", role, "--print-packages"], ["--print-packages", "--role", role]):
        result = subprocess.run(
            ["bash", str(DEPLOY / "install.sh"), *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        packages = result.stdout.split()
        assert all(p in packages for p in present) and not any(p in packages for p in absent)


def test_install_without_harden_ssh_leaves_root_login_alone():
    result = dry_run("--domain", "example.org", "--email", "admin@example.org")
    assert result.returncode == 0, result.stderr
    assert "PermitRootLogin" not in result.stdout


def test_install_without_a_domain_keeps_a_self_signed_certificate():
    result = dry_run()
    assert result.returncode == 0, result.stderr
    assert "certbot certonly" not in result.stdout
    assert "--var ssl_certificate=/etc/ssl/certs/ssl-cert-snakeoil.pem" in result.stdout


def test_install_needs_an_email_with_a_domain():
    result = dry_run("--domain", "example.org")
    assert result.returncode != 0
    assert "--email is needed with --domain" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(DEPLOY / script, os.X_OK) or script == "lib.sh"


def test_the_scripts_pass_shellcheck():
    shellcheck = debian_tool("shellcheck", "shellcheck")
    result = subprocess.run(
        [shellcheck, "-x", *(f"deploy/{script}" for script in SCRIPTS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_with_env_exports_the_file_and_runs_the_command(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text(
        "# a comment\nVOTE_RATE=10/h\nCSRF_TRUSTED_ORIGINS=https://a.example,https://b.example\n"
    )
    result = subprocess.run(
        [str(DEPLOY / "with-env"), str(env_file), "env"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode == 0, result.stderr
    assert "VOTE_RATE=10/h" in result.stdout.splitlines()
    assert "CSRF_TRUSTED_ORIGINS=https://a.example,https://b.example" in result.stdout.splitlines()


# --- Firewall ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "rules"), [("iptables-restore", "rules.v4"), ("ip6tables-restore", "rules.v6")]
)
def test_the_firewall_rules_load(command, rules):
    restore = debian_tool(command, "iptables")
    # Whether this machine lets us talk to the kernel's firewall at all (containers often
    # do not): an empty table must load before our rules can be judged.
    probe = subprocess.run(
        [restore, "--test"], input="*filter\nCOMMIT\n", capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"{command} --test cannot run here: {probe.stderr.strip()}")
    result = subprocess.run(
        [restore, "--test"],
        input=(DEPLOY / "iptables" / rules).read_text(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_firewall_drops_by_default_and_opens_only_ssh_and_the_web():
    rules = (DEPLOY / "iptables" / "rules.v4").read_text()
    assert ":INPUT DROP [0:0]" in rules
    assert ":FORWARD DROP [0:0]" in rules
    opened = re.findall(r"--dports? ([0-9,]+)", rules)
    assert sorted(port for group in opened for port in group.split(",")) == ["22", "443", "80"]
    assert "-A INPUT -i lo -j ACCEPT" in rules
    assert "ESTABLISHED,RELATED -j ACCEPT" in rules


# --- Production settings -------------------------------------------------------------------


def deploy_check(tmp_path, **overrides: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path),
        "DEBUG": "0",
        "HTTPS": "1",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "example.org,api.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://example.org,https://api.example.org",
        "RATELIMIT_IP_META_KEY": "HTTP_X_REAL_IP",
        "PRIVATE_MEDIA_X_ACCEL": "1",
        "DATABASE_URL": "postgres://imagemonkey:unused@127.0.0.1:5432/imagemonkey",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deployment_check(tmp_path):
    result = deploy_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def cookie_settings(tmp_path, **overrides: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_SETTINGS_MODULE": "imagemonkey.settings",
        **overrides,
    }
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) "
        "for n in ('SESSION_COOKIE_NAME', 'CSRF_COOKIE_NAME', 'SESSION_COOKIE_PATH', "
        "'CSRF_COOKIE_PATH', 'SESSION_COOKIE_DOMAIN', 'CSRF_COOKIE_DOMAIN', "
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_cookies_are_named_host_only_behind_https(tmp_path):
    assert cookie_settings(tmp_path, HTTPS="1") == {
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "CSRF_COOKIE_NAME": "__Host-csrftoken",
        # What a browser requires of a __Host- cookie, besides Secure:
        "SESSION_COOKIE_PATH": "/",
        "CSRF_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "CSRF_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }
    # `make run` serves plain HTTP, where a browser would refuse __Host- cookies.
    plain = cookie_settings(tmp_path, HTTPS="0")
    assert (plain["SESSION_COOKIE_NAME"], plain["CSRF_COOKIE_NAME"]) == ("sessionid", "csrftoken")


def test_the_deployment_check_catches_a_host_without_https(tmp_path):
    # The check above would pass vacuously if it never looked: without HTTPS it must fail.
    result = deploy_check(tmp_path, HTTPS="0")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout


# --- update.sh: deploy, and roll back when the new version fails --------------------------

STUBS = {
    # supervisor: record the call; `pid` names a stand-in gunicorn master.
    "supervisorctl": 'echo "supervisorctl $*" >>"$CALLS"\n[ "$1" != pid ] || cat "$STUB_DIR/master.pid"\n',
    # runuser -u USER -- COMMAND...: the test already runs as the user it needs.
    "runuser": 'shift 3\nexec "$@"\n',
    # /healthz through the socket: healthy unless the checked-out version says otherwise.
    "curl": '[ ! -e "$STUB_APP/UNHEALTHY" ] || exit 7\necho \'{"status": "ok"}\'\n',
    # nginx's user joins the app's group, and nginx reloads: recorded, never done.
    "usermod": 'echo "usermod $*" >>"$STUB_DIR/system.log"\n',
    "systemctl": 'echo "systemctl $*" >>"$STUB_DIR/system.log"\n',
}
# The app's python: manage.py fails to migrate in a version that carries BROKEN_MIGRATION.
FAKE_PYTHON = (
    '#!/bin/sh\necho "$(cat VERSION) $*" >>"$CALLS"\n'
    '[ ! -e BROKEN_MIGRATION ] || [ "$2" != migrate ] || exit 1\n'
)


class Deployed:
    def __init__(self, folder: Path):
        self.folder = folder
        self.work, self.upstream, self.app = (
            folder / "work",
            folder / "upstream.git",
            folder / "app",
        )
        self.calls = folder / "calls.log"
        self.env_file = folder / "env"
        self.env_file.write_text(
            "GUNICORN_BIND=unix:/nonexistent.sock\nALLOWED_HOSTS=example.org\n"
        )
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        for name, body in STUBS.items():
            (bin_dir / name).write_text("#!/bin/sh\n" + body)
            (bin_dir / name).chmod(0o755)
        self.master = subprocess.Popen(["sleep", "300"])
        (folder / "master.pid").write_text(f"{self.master.pid}\n")
        self.env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "CALLS": str(self.calls),
            "STUB_APP": str(self.app),
            "STUB_DIR": str(folder),
            "HEALTH_SECONDS": "2",
        }
        (self.work / "tools").mkdir(parents=True)
        (self.work / "deploy").mkdir()
        (self.work / "tools" / "bootstrap.sh").write_text('#!/bin/sh\necho bootstrap >>"$CALLS"\n')
        (self.work / "tools" / "bootstrap.sh").chmod(0o755)
        shutil.copy2(DEPLOY / "with-env", self.work / "deploy" / "with-env")
        (self.work / ".gitignore").write_text(".venv/\n")
        self.git(self.work, "init", "-q", "-b", "main")
        self.commit("v1")
        self.git(folder, "init", "-q", "--bare", "-b", "main", str(self.upstream))
        self.git(self.work, "push", "-q", str(self.upstream), "main")
        self.git(folder, "clone", "-q", str(self.upstream), str(self.app))
        (self.app / ".venv" / "bin").mkdir(parents=True)
        (self.app / ".venv" / "bin" / "python").write_text(FAKE_PYTHON)
        (self.app / ".venv" / "bin" / "python").chmod(0o755)

    def git(self, where: Path, *args: str) -> str:
        command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args]
        return subprocess.run(command, cwd=where, check=True, capture_output=True, text=True).stdout

    def commit(self, version: str, *flags: str) -> str:
        (self.work / "VERSION").write_text(version)
        for name in ("BROKEN_MIGRATION", "UNHEALTHY"):
            (self.work / name).unlink(missing_ok=True)
        for name in flags:
            (self.work / name).write_text("")
        self.git(self.work, "add", "-A")
        self.git(self.work, "commit", "-q", "-m", version)
        if self.upstream.exists():
            self.git(self.work, "push", "-q", str(self.upstream), "main")
        return self.git(self.work, "rev-parse", "HEAD").strip()

    def update(self) -> subprocess.CompletedProcess:
        self.calls.write_text("")
        command = [
            str(DEPLOY / "update.sh"), "--ref", "main", "--app-root", str(self.app),
            "--env-file", str(self.env_file), "--user", "root",
        ]  # fmt: skip
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)

    def head(self) -> str:
        return self.git(self.app, "rev-parse", "HEAD").strip()


@pytest.fixture
def deployed(tmp_path):
    if not is_root():
        pytest.skip("update.sh runs as root")
    debian_tool("git", "git")
    deployed = Deployed(tmp_path)
    yield deployed
    deployed.master.kill()
    deployed.master.wait()


def test_update_deploys_a_new_version_and_reloads_gracefully(deployed):
    new = deployed.commit("v2")
    result = deployed.update()
    assert result.returncode == 0, result.stdout + result.stderr
    assert deployed.head() == new
    calls = deployed.calls.read_text().splitlines()
    assert calls[:5] == [
        "bootstrap",
        "v2 manage.py migrate --no-input",
        "v2 manage.py make_groups",
        "v2 manage.py collectstatic --no-input -v 0",
        "supervisorctl pid imagemonkey",
    ]
    assert "supervisorctl signal HUP imagemonkey" in calls
    assert "Already at" in deployed.update().stdout
    # The app's user here is root, whose group www-data is not in: it joins, nginx reloads.
    assert (deployed.folder / "system.log").read_text().splitlines() == [
        "usermod -a -G root www-data",
        "systemctl reload nginx",
    ]


@pytest.mark.parametrize("flaw", ["BROKEN_MIGRATION", "UNHEALTHY"])
def test_update_rolls_back_when_the_new_version_fails(deployed, flaw):
    good = deployed.head()
    deployed.commit("v2", flaw)
    result = deployed.update()
    assert result.returncode != 0
    assert f"rolled back to {good}" in result.stderr
    assert deployed.head() == good
    calls = deployed.calls.read_text().splitlines()
    # The previous version is installed and reloaded again after the failure.
    assert calls[-3:] == [
        "v1 manage.py collectstatic --no-input -v 0",
        "supervisorctl pid imagemonkey",
        "supervisorctl signal HUP imagemonkey",
    ]
