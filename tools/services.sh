#!/usr/bin/env bash
# Start or stop the private PostgreSQL cluster and Redis that `make run` and
# `make test` use. Everything lives under ./var (or $DATA_DIR); both servers
# listen on unix sockets only, never on a TCP port, so they cannot collide
# with a system instance. Safe to run again: a running server is left alone.
# PostgreSQL asks every connection for the password in var/pg/password (mode
# 600), which settings.py reads: the socket's folder is closed to other users,
# and one who got through it still could not get in.
#
#   tools/services.sh start [dbname...]   start both, create the databases
#   tools/services.sh stop                stop both (and the replica)
#   tools/services.sh status
#   tools/services.sh replica-start       a streaming replica of the private cluster
#   tools/services.sh replica-stop        (pg_basebackup -R into var/pg-replica, its own socket)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
VAR="${DATA_DIR:-$ROOT/var}"
mkdir -p "$VAR"
# The physical path, as settings.py sees it (Path.resolve()).
VAR="$(cd "$VAR" && pwd -P)"
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root we run it as an unprivileged
# system user (postgres, or imagemonkey-dev if there is none).
pg_user() {
  if [ "$(id -u)" != 0 ]; then id -un; return; fi
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  id imagemonkey-dev >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin imagemonkey-dev
  echo imagemonkey-dev
}

is_root() { [ "$(id -u)" = 0 ]; }

# Run a PostgreSQL program as the cluster's user. As root, from /: the caller's
# folder may be one that user cannot enter.
as_pg() {
  local user; user="$(pg_user)"
  if is_root && [ "$user" != root ]; then
    (cd / && runuser -u "$user" -- "$@")
  else
    "$@"
  fi
}

# The cluster's folder, PG: ./var/pg itself, or the folder ./var/pg links to.
# It must be reachable by the cluster's user. When the checkout sits somewhere
# that user cannot enter (root's home, a `mktemp -d` folder: mode 700), the
# cluster lives in a folder of its own under /var/tmp, ./var/pg links to it, and
# PostgreSQL is only ever handed the resolved path, never the link: the link
# itself lies behind the folder it cannot enter. Root, and so the app, reaches
# the socket through the link (DATA_DIR/pg/run).
PG=""
pg_dirs() {
  local user; user="$(pg_user)"
  if [ -L "$VAR/pg" ]; then
    PG="$(readlink -m "$VAR/pg")"
    [ -d "$PG" ] || pg_private_dir "$PG" # its target was cleaned away: a fresh cluster
  elif [ -d "$VAR/pg" ]; then
    PG="$VAR/pg"
  elif is_root && [ "$user" != root ] && ! runuser -u "$user" -- test -x "$VAR" 2>/dev/null; then
    PG="/var/tmp/imagemonkey-$(printf '%s' "$VAR" | md5sum | cut -c1-12)"
    # Left over from an earlier checkout at this path (removed with `rm -rf var`
    # or with the whole checkout): stop its server, if one still runs, and start afresh.
    if [ -s "$PG/data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PG/data" status >/dev/null 2>&1; then
      as_pg "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$PG"
    pg_private_dir "$PG"
    ln -s "$PG" "$VAR/pg"
    say "PostgreSQL's user cannot enter $VAR; its data lives in $PG (linked as $VAR/pg)"
  else
    mkdir -p "$VAR/pg"
    PG="$VAR/pg"
  fi
}

# A folder under /var/tmp that only the cluster's user (and root) may enter.
pg_private_dir() {
  mkdir -p "$1"; chown "$(pg_user)" "$1"; chmod 700 "$1"
}

# The cluster's folder when it exists, for stop and status (which create nothing).
pg_existing() {
  if [ -L "$VAR/pg" ] || [ -d "$VAR/pg" ]; then readlink -m "$VAR/pg"; fi
}

# The cluster's password: made once, kept in $PG/password (mode 600, the caller's),
# so that it goes with the cluster. It is hex, so it needs no quoting in SQL or a URL.
pg_password() {
  local file="$PG/password"
  if [ ! -s "$file" ]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$file.new" && mv "$file.new" "$file")
  fi
  cat "$file"
}

pg_start() {
  [ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL server binaries not found (install postgresql-15, or set DATABASE_URL)"
  local user; user="$(pg_user)"
  pg_dirs
  local data="$PG/data" run="$PG/run"
  mkdir -p "$run"
  if is_root; then chown "$user" "$PG" "$run"; fi
  chmod 700 "$PG" "$run"
  if [ ! -s "$data/PG_VERSION" ]; then
    say "Creating a private PostgreSQL cluster in $data"
    rm -f "$PG/password" # a new cluster, a new password
    mkdir -p "$data"
    if is_root; then chown "$user" "$data"; fi
    chmod 700 "$data"
    # initdb reads the password from a file of the cluster's user, removed at once.
    local pwfile="$PG/initdb.password"
    (umask 077 && pg_password >"$pwfile")
    if is_root; then chown "$user" "$pwfile"; fi
    as_pg "$PGBIN/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=reject -E UTF8 --locale=C.UTF-8 \
      >"$PG/initdb.log" 2>&1 || { rm -f "$pwfile"; cat "$PG/initdb.log"; die "initdb failed"; }
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$run'
unix_socket_permissions = 0700
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 100
shared_buffers = 256MB
CONF
  fi
  if as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return
  fi
  say "Starting PostgreSQL (socket in $VAR/pg/run)"
  as_pg "$PGBIN/pg_ctl" -D "$data" -l "$PG/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$PG/server.log"; die "PostgreSQL did not start"; }
}

# A cluster made before passwords trusted every local connection: give its roles the
# password and make it ask for it (a reload, no restart).
pg_require_password() {
  local data="$PG/data"
  grep -Eq '^[[:space:]]*local[[:space:]].*[[:space:]]trust[[:space:]]*$' "$data/pg_hba.conf" || return 0
  say "The private PostgreSQL cluster trusted every local user: it asks for a password now"
  local password role
  password="$(pg_password)"
  for role in postgres imagemonkey; do
    printf "DO \$\$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN
      ALTER ROLE %s PASSWORD '%s'; END IF; END \$\$;\n" "$role" "$role" "$password"
  done | "$PGBIN/psql" -h "$VAR/pg/run" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA >/dev/null
  as_pg sed -i -E 's/[[:space:]]trust[[:space:]]*$/ scram-sha-256/' "$data/pg_hba.conf"
  as_pg "$PGBIN/pg_ctl" -D "$data" reload >/dev/null
}

pg_ensure_db() {
  local run="$VAR/pg/run" db
  [ -s "$PG/password" ] || die "the private cluster asks for a password, and $VAR/pg/password is gone: 'make stop', remove $VAR/pg (and what it links to), and start again for a fresh cluster"
  # libpq reads PGPASSWORD from the environment: the password is never on a command line.
  local -x PGPASSWORD
  PGPASSWORD="$(pg_password)"
  local psql=("$PGBIN/psql" -h "$run" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='imagemonkey'")" != 1 ]; then
    printf "CREATE ROLE imagemonkey LOGIN CREATEDB PASSWORD '%s';\n" "$PGPASSWORD" | "${psql[@]}"
  fi
  for db in "$@"; do
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$db'")" != 1 ]; then
      say "Creating database $db"
      "${psql[@]}" -c "CREATE DATABASE \"$db\" OWNER imagemonkey"
    fi
  done
}

redis_start() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "Installing redis-server (Debian package)"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
      # The package starts a system instance on port 6379; ours needs none of it.
    else
      die "redis-server is missing: install it with 'sudo apt-get install redis-server' (or set REDIS_URL)"
    fi
  fi
  mkdir -p "$VAR/redis"
  local sock="$VAR/redis/redis.sock"
  if [ -S "$sock" ] && redis-cli -s "$sock" ping >/dev/null 2>&1; then
    return
  fi
  say "Starting Redis (socket $sock)"
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$VAR/redis" \
    --daemonize yes --pidfile "$VAR/redis/redis.pid" --logfile "$VAR/redis/redis.log" \
    --save 60 1000 --appendonly no >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -s "$sock" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "Redis did not start (see $VAR/redis/redis.log)"
}

# A streaming replica of the private cluster, made once with pg_basebackup -R (the
# cluster's superuser over its socket: initdb's pg_hba lets local replication in with the
# password, and wal_level is replica by default) and started on a socket folder of its
# own, $VAR/pg-replica/run. Reads only: DATABASE_REPLICA_URLS points the site at it.
replica_start() {
  [ -x "$PGBIN/pg_basebackup" ] || die "PostgreSQL server binaries not found"
  local user primary replica data run
  user="$(pg_user)"
  primary="$(pg_existing)"
  [ -n "$primary" ] && as_pg "$PGBIN/pg_ctl" -D "$primary/data" status >/dev/null 2>&1 \
    || die "the private cluster is not running: 'tools/services.sh start' first"
  PG="$primary"
  replica="$VAR/pg-replica"; data="$replica/data"; run="$replica/run"
  mkdir -p "$replica" "$run"
  if is_root; then chown "$user" "$replica" "$run"; fi
  chmod 700 "$replica" "$run"
  if [ ! -s "$data/PG_VERSION" ]; then
    say "Copying the private cluster into a streaming replica in $data"
    local -x PGPASSWORD
    PGPASSWORD="$(pg_password)"
    as_pg "$PGBIN/pg_basebackup" -h "$VAR/pg/run" -U postgres \
      -D "$data" -R -X stream -c fast >"$replica/basebackup.log" 2>&1 \
      || { cat "$replica/basebackup.log"; die "pg_basebackup failed"; }
    # Its own socket; long exports on it are not cancelled by the primary's vacuum.
    printf "unix_socket_directories = '%s'\nhot_standby_feedback = on\n" "$run" \
      | as_pg tee -a "$data/postgresql.auto.conf" >/dev/null
  fi
  if as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return
  fi
  say "Starting the replica (socket in $run)"
  as_pg "$PGBIN/pg_ctl" -D "$data" -l "$replica/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$replica/server.log"; die "the replica did not start"; }
}

replica_stop() {
  local data="$VAR/pg-replica/data"
  if [ -s "$data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "Stopping the replica"
    as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
}

stop_all() {
  replica_stop
  local pg; pg="$(pg_existing)"
  if [ -n "$pg" ] && [ -s "$pg/data/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$pg/data" status >/dev/null 2>&1; then
    say "Stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null
  fi
  if [ -S "$VAR/redis/redis.sock" ]; then
    say "Stopping Redis"
    redis-cli -s "$VAR/redis/redis.sock" shutdown nosave >/dev/null 2>&1 || true
  fi
}

cmd="${1:-status}"; shift || true
case "$cmd" in
  start)
    if [ -z "${DATABASE_URL:-}" ]; then pg_start; pg_require_password; pg_ensure_db "${@:-imagemonkey}"; fi
    if [ -z "${REDIS_URL:-}" ]; then redis_start; fi
    ;;
  stop) stop_all ;;
  replica-start) replica_start ;;
  replica-stop) replica_stop ;;
  status)
    pg="$(pg_existing)"
    if [ -n "$pg" ] && line="$(as_pg "$PGBIN/pg_ctl" -D "$pg/data" status 2>/dev/null)"; then
      printf '%s\n' "${line%%$'\n'*}"
    else
      echo "PostgreSQL: not running"
    fi
    redis-cli -s "$VAR/redis/redis.sock" ping 2>/dev/null | sed 's/^/Redis: /' || echo "Redis: not running"
    ;;
  *) die "usage: tools/services.sh start|stop|status|replica-start|replica-stop" ;;
esac
