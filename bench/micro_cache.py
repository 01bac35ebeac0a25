"""nginx micro-caching against Django's anonymous page cache, on the same gunicorn.

One gunicorn (deploy/gunicorn.conf.py, 4 workers, Django's page cache on, 10 s) and one
nginx from Debian on loopback in front of it with two servers: one that only proxies
(deploy/nginx without its micro-cache), and one with deploy/nginx's micro-cache: the
pages the app offers with X-Accel-Expires kept for what is left of their 10 s (any
cookie, Authorization or voter/API token bypasses the cache and is never stored; an
answer that sets a cookie is never stored). Plain HTTP on loopback: TLS costs the same
with or without the cache, and is left out of both. In rounds, with the same wrk load: GET /ping straight to gunicorn (the
baseline of browse_vs_hello), then the anonymous browse pages through the proxying
nginx, then through the caching one.

    browse_vs_hello_nginx        browse pages/s through nginx (Django's cache) ÷ /ping/s
    browse_vs_hello_nginx_cache  browse pages/s through nginx's micro-cache ÷ /ping/s

Both ÷ the same /ping/s as browse_vs_hello, so the three compare directly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from .common import Context, current_database_url, median, ratio, use_database
from .serving import (
    _browse,
    _hello,
    _request,
    browse_paths,
    ensure_wrk,
    free_port,
    gunicorn,
    mixed_load,
)

PAGE_SECONDS = 10  # Django's PAGE_CACHE_SECONDS; nginx keeps a page what is left of it

# What the caching server adds to a plain proxy: the lines of deploy/nginx's `location /`
# (tests/test_deploy.py holds the two equal). nginx stores only what the app offers with
# X-Accel-Expires (people/pagecache.py: the pages without a form, for what is left of
# their PAGE_CACHE_SECONDS), never for a request with a cookie or a token, never an answer
# that sets a cookie.
CACHE_DIRECTIVES = """
        proxy_cache imagemonkey_pages;
        proxy_cache_key $scheme$host$request_uri;
        proxy_cache_bypass $http_cookie $http_authorization $http_x_voter_token $http_x_api_token;
        proxy_no_cache $http_cookie $http_authorization $http_x_voter_token $http_x_api_token;
        proxy_ignore_headers Cache-Control Expires;
        proxy_cache_lock on;
        proxy_cache_use_stale updating;
        proxy_cache_background_update on;
"""

CONF = """
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 30m;
    # The mixed load names each simulated user's address, as nginx's realip would.
    map $http_x_real_ip $bench_client {{
        "" $remote_addr;
        default $http_x_real_ip;
    }}
    proxy_cache_path {prefix}/cache levels=1:2 keys_zone=imagemonkey_pages:10m max_size=512m inactive=2m use_temp_path=off;
    upstream bench_app {{
        server 127.0.0.1:{upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $bench_client;
            proxy_pass http://bench_app;
        }}
    }}
    server {{
        listen 127.0.0.1:{cached};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $bench_client;
{cache}
            add_header X-Nginx-Cache $upstream_cache_status always;
            proxy_pass http://bench_app;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    """nginx's path: Debian's, installed when missing and we are root (as wrk is)."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if found or os.environ.get("BENCH_NO_INSTALL") or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "nginx-light"]
    for command in (install, ["apt-get", "update", "-qq"], install):
        subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        if os.access("/usr/sbin/nginx", os.X_OK):
            return "/usr/sbin/nginx"
    return None


@contextmanager
def nginx_in_front(nginx: str, upstream: int):
    """nginx on two loopback ports before gunicorn's: yields (plain port, caching port)."""
    prefix = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    plain, cached = free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        CONF.format(
            prefix=prefix,
            upstream=upstream,
            plain=plain,
            cached=cached,
            cache=CACHE_DIRECTIVES,
        )
    )
    command = [nginx, "-p", str(prefix), "-c", str(conf)]
    if os.geteuid() == 0:
        command += ["-g", "daemon off; user nobody nogroup;"]
        shutil.chown(prefix, "nobody")
    else:
        command += ["-g", "daemon off;"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited ({process.returncode}); see {prefix}")
            with suppress(OSError):
                if _request("127.0.0.1", plain, "GET", "/ping")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not answer within 20 s")
            time.sleep(0.1)
        yield plain, cached
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(prefix, ignore_errors=True)


def mixed_load_nginx(ctx: Context) -> dict:
    """The mixed load through nginx's micro-cache: what visitors of the deployed site meet."""
    nginx = find_nginx()
    if nginx is None:
        print("    nginx is missing (and cannot be installed): skipped")
        return {}

    @contextmanager
    def caching_nginx(upstream: int):
        with nginx_in_front(nginx, upstream) as (_plain, cached):
            yield cached

    measured = mixed_load(ctx, in_front=caching_nginx, name="mixed_load_nginx")
    return {f"nginx_{key}": value for key, value in measured.items()}


def browse_vs_hello_nginx_cache(ctx: Context) -> dict:
    scale = ctx.scale
    use_database(ctx.large)
    nginx = find_nginx()
    if nginx is None:
        print("    nginx is missing (and cannot be installed): skipped")
        return {}
    wrk = ensure_wrk()
    rounds = max(1, min(3, scale.select_rounds))
    seconds, connections = scale.load_seconds, scale.load_connections
    hello_runs, plain_runs, cached_runs = [], [], []
    with (
        gunicorn(current_database_url(), ratelimit=False, page_cache_seconds=PAGE_SECONDS) as (
            host,
            port,
        ),
        nginx_in_front(nginx, port) as (plain, cached),
    ):
        paths = browse_paths(host, port)
        warm = max(1.0, seconds / 5)
        _hello(wrk, host, port, warm, connections)
        _browse(wrk, host, plain, warm, connections, paths)
        _browse(wrk, host, cached, warm, connections, paths)
        for _ in range(rounds):
            hello_runs.append(_hello(wrk, host, port, seconds, connections))
            plain_runs.append(_browse(wrk, host, plain, seconds, connections, paths))
            cached_runs.append(_browse(wrk, host, cached, seconds, connections, paths))
    ctx.details["browse_vs_hello_nginx_cache"] = {
        "client": "wrk" if wrk else "python threads",
        "connections": connections,
        "paths": len(paths),
        "hello_runs": hello_runs,
        "nginx_plain_runs": plain_runs,
        "nginx_cache_runs": cached_runs,
    }

    def per_round(runs):
        return median(
            [ratio(b["per_s"], h["per_s"]) for h, b in zip(hello_runs, runs, strict=True)]
        )

    return {
        "browse_vs_hello_nginx": per_round(plain_runs),
        "browse_vs_hello_nginx_cache": per_round(cached_runs),
        "browse_per_s_nginx": median([r["per_s"] for r in plain_runs]),
        "browse_per_s_nginx_cache": median([r["per_s"] for r in cached_runs]),
        "browse_nginx_hello_per_s": median([r["per_s"] for r in hello_runs]),
        "browse_nginx_failures": sum(r["failed"] for r in plain_runs + cached_runs),
    }
