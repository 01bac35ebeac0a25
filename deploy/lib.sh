# shellcheck shell=bash
# Shared by deploy/install.sh, update.sh, backup.sh and restore.sh: messages, dry runs,
# the environment file, PostgreSQL connection settings, and gunicorn reloads.

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# run CMD...: print the command, then run it unless this is a dry run.
DRY_RUN="${DRY_RUN:-0}"
run() {
  printf '  +'
  printf ' %q' "$@"
  printf '\n'
  [ "$DRY_RUN" = 1 ] || "$@"
}

# env_get KEY FILE: the value of KEY in a KEY=value file (without running the file).
env_get() {
  [ -r "$2" ] || return 0
  sed -n "s/^$1=//p" "$2" | tail -n 1
}

# pg_env URL: `export PG...=...` lines for a postgres:// URL, for eval. libpq reads them
# (pg_dump, pg_restore, psql), so the password never appears in a process list.
pg_env() {
  python3 - "$1" <<'PY'
import shlex
import sys
from urllib.parse import parse_qs, unquote, urlsplit

parts = urlsplit(sys.argv[1])
if parts.scheme not in ("postgres", "postgresql", "pgsql"):
    sys.exit("DATABASE_URL is not a postgres:// URL")
userinfo, _, hostport = parts.netloc.rpartition("@")
user, _, password = userinfo.partition(":")
if hostport.startswith("["):
    host, _, port = hostport[1:].partition("]")
    port = port.lstrip(":")
else:
    host, _, port = hostport.partition(":")
values = {
    "PGHOST": unquote(host),
    "PGPORT": port,
    "PGUSER": unquote(user),
    "PGPASSWORD": unquote(password),
    "PGDATABASE": unquote(parts.path.lstrip("/")),
    "PGSSLMODE": parse_qs(parts.query).get("sslmode", [""])[0],
}
for name in values:
    print(f"unset {name}")
for name, value in values.items():
    if value:
        print(f"export {name}={shlex.quote(value)}")
PY
}

# let_nginx_connect: nginx's user joins the app's group, whose members alone may use
# gunicorn's socket (mode 0660, deploy/gunicorn.conf.py). True when it had to join: nginx
# workers started after that (a reload) have the group. Call after APP_USER.
NGINX_USER="${NGINX_USER:-www-data}"
let_nginx_connect() {
  if [ "$DRY_RUN" != 1 ] && id -nG "$NGINX_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$APP_USER"; then
    return 1
  fi
  run usermod -a -G "$APP_USER" "$NGINX_USER"
}

# as_app: the command prefix that runs something as the app's user, in the app's folder,
# with the user's home (pip keeps its cache there). Call after APP, APP_USER and APP_HOME.
as_app() {
  AS_APP=(runuser -u "$APP_USER" -- env -C "$APP" HOME="$APP_HOME")
}

# manage ARGS...: manage.py as the app's user, with the environment file.
manage() {
  run "${AS_APP[@]}" "$APP/deploy/with-env" "$ENV_FILE" "$APP/.venv/bin/python" manage.py "$@"
}

# healthy: /healthz answers ok through gunicorn's socket, within HEALTH_SECONDS (30).
healthy() {
  local socket host
  socket="$(env_get GUNICORN_BIND "$ENV_FILE")"
  socket="${socket#unix:}"
  host="$(env_get ALLOWED_HOSTS "$ENV_FILE" | cut -d, -f1)"
  for _ in $(seq 1 "${HEALTH_SECONDS:-30}"); do
    if curl -fsS --max-time 5 --unix-socket "$socket" -H "Host: $host" \
      -H "X-Forwarded-Proto: https" http://localhost/healthz 2>/dev/null | grep -q '"ok"'; then
      return 0
    fi
    sleep 1
  done
  return 1
}

# reload_app: new code and settings without dropping a request. gunicorn's HUP starts new
# workers and lets the old ones finish what they are serving; we wait until the old ones
# are gone, so that the health check that follows talks to the new code.
reload_app() {
  local master old
  master="$(supervisorctl pid "$PROGRAM" 2>/dev/null || true)"
  if ! [ "${master:-0}" -gt 0 ] 2>/dev/null; then
    run supervisorctl start "$PROGRAM"
    return
  fi
  old="$(pgrep -P "$master" | tr '\n' ' ')"
  run supervisorctl signal HUP "$PROGRAM" || return 1
  for _ in $(seq 1 60); do
    local alive=0 pid
    for pid in $old; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && return 0
    sleep 1
  done
  warn "old gunicorn workers still running after 60 s: $old"
}
