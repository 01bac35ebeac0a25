"""Render ImageMonkey's server configuration from the templates in deploy/.

One piece of code fills in every template, for a real host (deploy/install.sh) and for
the stack test (tests/test_stack.py): only names, ports and paths differ between them.

    python3 deploy/render.py --var server_name=example.org --out /tmp/rendered
    python3 deploy/render.py --list            # every variable, its default and meaning

Templates mark variables as a name in double braces. A variable that is alone on its line may hold
several lines (the listen directives, say); they keep that line's indentation. Values are
checked before they are written: a path, a host name or a rate cannot smuggle in an
nginx directive. Standard library only, so the system's python3 can run it before the
app's virtualenv exists.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent

# template (relative to deploy/) → rendered file (relative to the output folder)
TEMPLATES = {
    "nginx/imagemonkey.conf": "nginx/imagemonkey.conf",
    "nginx/imagemonkey-file-headers.conf": "nginx/imagemonkey-file-headers.conf",
    "nginx/local.conf": "nginx/local.conf",
    "supervisor/imagemonkey.conf": "supervisor/imagemonkey.conf",
    "systemd/imagemonkey-orphans.service": "systemd/imagemonkey-orphans.service",
    "systemd/imagemonkey-orphans.timer": "systemd/imagemonkey-orphans.timer",
    "systemd/imagemonkey-backup.service": "systemd/imagemonkey-backup.service",
    "systemd/imagemonkey-backup.timer": "systemd/imagemonkey-backup.timer",
    "systemd/imagemonkey-clearsessions.service": "systemd/imagemonkey-clearsessions.service",
    "systemd/imagemonkey-clearsessions.timer": "systemd/imagemonkey-clearsessions.timer",
    "systemd/imagemonkey-purge-rejected.service": "systemd/imagemonkey-purge-rejected.service",
    "systemd/imagemonkey-purge-rejected.timer": "systemd/imagemonkey-purge-rejected.timer",
    "systemd/imagemonkey.tmpfiles": "systemd/imagemonkey.tmpfiles",
    "redis/imagemonkey.conf": "redis/imagemonkey.conf",
}

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


class RenderError(ValueError):
    pass


def _host(value: str) -> str:
    if not re.fullmatch(
        r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*",
        value,
    ):
        raise RenderError(f"not a host name: {value!r}")
    return value.lower()


def _optional_host(value: str) -> str:
    return _host(value) if value else ""


def _path(value: str) -> str:
    if not value.startswith("/") or not re.fullmatch(r"[A-Za-z0-9._/@+-]+", value):
        raise RenderError(f"not an absolute path of plain characters: {value!r}")
    return value.rstrip("/") or "/"


def _listen(value: str) -> str:
    addresses = value.replace(",", " ").split()
    if not addresses:
        raise RenderError("give at least one listen address")
    for address in addresses:
        if not re.fullmatch(r"(?:\[[0-9A-Fa-f:.]+\]:|[0-9A-Za-z.-]+:)?[0-9]{1,5}", address):
            raise RenderError(f"not a listen address (port, ip:port or [ipv6]:port): {address!r}")
        if not 0 < int(address.rsplit(":", 1)[-1]) < 65536:
            raise RenderError(f"no such port: {address!r}")
    return " ".join(addresses)


def _rate(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*r/[sm]", value):
        raise RenderError(f"not an nginx rate like 10r/s or 30r/m: {value!r}")
    return value


def _count(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,6}", value):
        raise RenderError(f"not a whole number: {value!r}")
    return str(int(value))


def _sha256(value: str) -> str:
    if value and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise RenderError(f"not a sha256 in hex: {value!r}")
    return value


def _networks(value: str) -> str:
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise RenderError(f"not an address or network: {item!r}") from None
    return " ".join(networks)


def _app_servers(value: str) -> str:
    """gunicorn addresses: unix:/path or host:port, comma- or space-separated ("" = the socket)."""
    servers = value.replace(",", " ").split()
    for server in servers:
        if server.startswith("unix:"):
            _path(server[len("unix:") :])
        elif not re.fullmatch(r"(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+):[0-9]{1,5}", server):
            raise RenderError(f"not an app server (unix:/path or host:port): {server!r}")
    return " ".join(servers)


def _user(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]*", value):
        raise RenderError(f"not a user or group name: {value!r}")
    return value


def _nginx_user(value: str) -> str:
    return " ".join(_user(part) for part in value.split())


@dataclass(frozen=True)
class Variable:
    default: str | None  # None: required. May name earlier variables: "{data_dir}/static".
    check: Callable[[str], str]
    help: str


VARIABLES: dict[str, Variable] = {
    "server_name": Variable(None, _host, "the site's host name, e.g. example.org"),
    "api_server_name": Variable("", _optional_host, "a second host name for the API (optional)"),
    "http_listen": Variable("80 [::]:80", _listen, "plain HTTP listen addresses"),
    "https_listen": Variable("443 [::]:443", _listen, "HTTPS listen addresses"),
    "ssl_certificate": Variable(
        "/etc/letsencrypt/live/{server_name}/fullchain.pem", _path, "certificate chain"
    ),
    "ssl_certificate_key": Variable(
        "/etc/letsencrypt/live/{server_name}/privkey.pem", _path, "certificate's private key"
    ),
    "app_root": Variable("/home/imagemonkey/app", _path, "the checkout with .venv/"),
    "app_user": Variable("imagemonkey", _user, "the user the app runs as"),
    "app_home": Variable("/home/{app_user}", _path, "that user's home"),
    "nginx_group": Variable("www-data", _user, "the group nginx's workers run as"),
    "env_file": Variable("/etc/imagemonkey/env", _path, "the app's environment (secrets)"),
    "data_dir": Variable("/var/lib/imagemonkey", _path, "DATA_DIR"),
    "static_root": Variable("{data_dir}/static", _path, "where collectstatic writes"),
    "media_root": Variable("{data_dir}/media", _path, "MEDIA_ROOT"),
    "socket_dir": Variable("/run/imagemonkey", _path, "folder of gunicorn's socket"),
    "gunicorn_socket": Variable("{socket_dir}/gunicorn.sock", _path, "gunicorn's unix socket"),
    "app_servers": Variable(
        "",
        _app_servers,
        "app hosts behind this nginx: unix:/path or host:port, comma-separated "
        "(default: the gunicorn socket on this host)",
    ),
    "max_upload_mb": Variable("20", _count, "MAX_UPLOAD_MB, the app's upload limit"),
    "upload_slack_mb": Variable("1", _count, "room for form fields above MAX_UPLOAD_MB"),
    "vote_rate": Variable("5r/s", _rate, "votes per client address (nginx)"),
    "vote_burst": Variable("30", _count, "votes above the rate before 429"),
    "donate_rate": Variable("1r/s", _rate, "donation requests per client address"),
    "donate_burst": Variable("10", _count, "donation requests above the rate before 429"),
    "api_rate": Variable("10r/s", _rate, "other /v1/ requests per client address"),
    "api_burst": Variable("50", _count, "/v1/ requests above the rate before 429"),
    "login_rate": Variable("2r/m", _rate, "sign-in attempts (POST) per client address"),
    "login_burst": Variable("5", _count, "sign-in attempts above the rate before 429"),
    "export_connections": Variable("4", _count, "export downloads at once per client address"),
    "export_buffer_mb": Variable("1024", _count, "nginx's buffer file for one export download"),
    "export_send_timeout": Variable("60", _count, "seconds a reader may take nothing"),
    "media_rate": Variable("50r/s", _rate, "pictures per client address"),
    "media_burst": Variable("200", _count, "pictures above the rate before 429 (a grid page)"),
    "trusted_proxies": Variable(
        "", _networks, "load balancers allowed to set X-Forwarded-For (none by default)"
    ),
    "proxy_read_timeout": Variable("70", _count, "seconds nginx waits for gunicorn"),
    "log_dir": Variable("/var/log/nginx", _path, "nginx's log folder"),
    "page_cache_dir": Variable(
        "/var/lib/nginx/imagemonkey-pages", _path, "nginx's micro-cache of public pages"
    ),
    "app_log_dir": Variable("/var/log/imagemonkey", _path, "gunicorn's log folder"),
    "acme_root": Variable("/var/www/letsencrypt", _path, "certbot's webroot"),
    "snippets_dir": Variable("/etc/nginx/snippets", _path, "where the headers snippet lives"),
    "backup_dir": Variable("/var/backups/imagemonkey", _path, "where backups are kept"),
    "backup_keep_days": Variable("14", _count, "how long backups are kept"),
    "redis_user": Variable("imagemonkey", _user, "the app's Redis user (REDIS_URL's user name)"),
    "redis_password_sha256": Variable(
        "", _sha256, "sha256 (hex) of that user's password; without it the user is off"
    ),
    "redis_key_prefix": Variable("im", _user, "CACHE_KEY_PREFIX: the keys that user may use"),
    "local_prefix": Variable("{out_dir}/local", _path, "local.conf only: pid and temp files"),
    "local_user": Variable("", _nginx_user, "local.conf only: `user` for a root master"),
}


def resolve(overrides: Mapping[str, str], out_dir: Path) -> dict[str, str]:
    """Every variable's checked value, plus the derived ones the templates use."""
    unknown = sorted(set(overrides) - set(VARIABLES))
    if unknown:
        raise RenderError(f"unknown variable(s): {', '.join(unknown)} (see --list)")
    values = {"out_dir": _path(str(Path(out_dir).resolve()))}
    for name, variable in VARIABLES.items():
        raw = overrides.get(name)
        if raw is None and variable.default is None:
            raise RenderError(f"{name} is required: --var {name}=... ({variable.help})")
        if raw is None:
            raw = variable.default.format(**values)
        try:
            values[name] = variable.check(raw.strip())
        except RenderError as error:
            raise RenderError(f"{name}: {error}") from None
    return values | derived(values)


def derived(values: Mapping[str, str]) -> dict[str, str]:
    http, https = values["http_listen"].split(), values["https_listen"].split()
    public_port = https[0].rsplit(":", 1)[-1]
    networks = values["trusted_proxies"].split()
    realip = (
        [f"set_real_ip_from {network};" for network in networks]
        + ["real_ip_header X-Forwarded-For;", "real_ip_recursive on;"]
        if networks
        else ["# No trusted proxies: the client address is the connection's peer."]
    )
    redis_app_user = (
        f"user {values['redis_user']} on #{values['redis_password_sha256']} "
        f"~{values['redis_key_prefix']}:* resetchannels +@all -@admin -@dangerous"
        if values["redis_password_sha256"]
        else f"user {values['redis_user']} off"
    )
    servers = values["app_servers"].split() or [f"unix:{values['gunicorn_socket']}"]
    if len(servers) == 1:
        # fail_timeout=0: a gunicorn restart must not mark the only server down.
        upstream = [f"server {servers[0]} fail_timeout=0;"]
    else:
        # A host that fails is left out for 10 s; the others take its share meanwhile.
        upstream = [f"server {server} max_fails=1 fail_timeout=10s;" for server in servers]
    return {
        "upstream_servers": "\n".join(upstream),
        "redis_app_user": redis_app_user,
        "server_names": " ".join(filter(None, [values["server_name"], values["api_server_name"]])),
        "listen_http": "\n".join(f"listen {a};" for a in http),
        "listen_http_default": "\n".join(f"listen {a} default_server;" for a in http),
        "listen_https": "\n".join(f"listen {a} ssl http2;" for a in https),
        "listen_https_default": "\n".join(f"listen {a} ssl http2 default_server;" for a in https),
        "https_port_suffix": "" if public_port == "443" else f":{public_port}",
        "realip": "\n".join(realip),
        "upload_body_size": f"{int(values['max_upload_mb']) + int(values['upload_slack_mb'])}m",
        "worker_user": f"user {values['local_user']};" if values["local_user"] else "",
    }


def render_text(template: str, values: Mapping[str, str]) -> str:
    lines = []
    for line in template.splitlines(keepends=True):
        alone = re.fullmatch(r"([ \t]*)\{\{\s*([a-z_]+)\s*\}\}[ \t]*(\n?)", line)
        if alone:
            indent, name, newline = alone.groups()
            value = _lookup(values, name)
            lines.append("\n".join(indent + part for part in value.split("\n")) + newline)
        else:
            lines.append(PLACEHOLDER.sub(lambda match: _lookup(values, match[1]), line))
    return "".join(lines)


def _lookup(values: Mapping[str, str], name: str) -> str:
    if name not in values:
        raise RenderError(f"the template names an unknown variable: {name}")
    return values[name]


def render(overrides: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write every rendered file under out_dir; return their paths."""
    out_dir = Path(out_dir)
    values = resolve(overrides, out_dir)
    written = []
    for source, target in TEMPLATES.items():
        path = out_dir / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_text((DEPLOY / source).read_text(), values))
        written.append(path)
    return written


def parse_vars(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise RenderError(f"--var takes NAME=VALUE, not {pair!r}")
        overrides[name.strip()] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, help="folder for the rendered files")
    parser.add_argument("--list", action="store_true", help="list the variables and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, variable in VARIABLES.items():
            default = "(required)" if variable.default is None else repr(variable.default)
            print(f"{name:22} {default:52} {variable.help}")
        return 0
    if args.out is None:
        parser.error("--out is required")
    try:
        for path in render(parse_vars(args.var), args.out):
            print(path)
    except RenderError as error:
        print(f"render.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
