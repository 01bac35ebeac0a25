#!/usr/bin/env bash
# Set up ImageMonkey on a fresh Debian 12 host, or bring a host that runs it in line with
# this checkout's configuration. Safe to run again: each step checks before it changes
# anything, and the secrets in the environment file are kept.
#
#   sudo deploy/install.sh --domain example.org --email you@example.org
#   deploy/install.sh --dry-run --domain example.org --email you@example.org
#
# Options:
#   --domain NAME         the site's host name; its DNS must point at this host. certbot
#                         gets a certificate for it (without a domain the host's name and
#                         a self-signed certificate are used)
#   --api-domain NAME     a second host name for the API, e.g. api.example.org (optional)
#   --email ADDRESS       where Let's Encrypt sends expiry notices (needed with --domain)
#   --repo URL            where update.sh fetches new versions
#                         (default: this checkout's origin)
#   --ref REF             the version to install (default: this checkout's HEAD commit)
#   --max-upload-mb N     MAX_UPLOAD_MB, for Django and nginx alike (default 20)
#   --trusted-proxy CIDR  a load balancer in front of nginx that may set X-Forwarded-For
#                         (repeat for several; default none)
#   --harden-ssh          also forbid root login over ssh (only once another user with
#                         sudo can log in: the script checks that such a user exists)
#   --no-firewall         leave the firewall alone
#   --role all|app|db     what this host runs (default all: everything on one host).
#                         Several hosts (README: Several hosts): one `db` host with the
#                         PostgreSQL primary and Redis, and `app` hosts with nginx and
#                         gunicorn, behind a load balancer (--trusted-proxy):
#   --listen ADDRESS      db: the private address PostgreSQL and Redis also listen on
#   --app-host CIDR       db: app hosts that may reach them (repeat for several)
#   --replica-host CIDR   db: replicas that may stream from the primary (repeat)
#   --database-url URL    app: the primary (the db host prints it)
#   --redis-url URL       app: Redis on the db host (the db host prints it)
#   --replica-url URL     app: a streaming replica to read from (repeat for several)
#   --dry-run             print every step, as for a fresh host, and change nothing
#   --print-packages      print the Debian packages it installs, and stop (to fetch them
#                         ahead, for a host without the network)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$HERE/.." && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

APP_USER=imagemonkey
APP_HOME=/home/imagemonkey
APP="$APP_HOME/app"
PROGRAM=imagemonkey
ENV_DIR=/etc/imagemonkey
ENV_FILE="$ENV_DIR/env"
DATA_DIR=/var/lib/imagemonkey
MEDIA_ROOT="$DATA_DIR/media"
SOCKET_DIR=/run/imagemonkey
LOG_DIR=/var/log/imagemonkey
BACKUP_DIR=/var/backups/imagemonkey
ACME_ROOT=/var/www/letsencrypt
SNAKEOIL_CERT=/etc/ssl/certs/ssl-cert-snakeoil.pem
SNAKEOIL_KEY=/etc/ssl/private/ssl-cert-snakeoil.key
DB_NAME=imagemonkey
REDIS_CONF=/etc/redis/redis.conf
REDIS_USERS=/etc/redis/imagemonkey.conf
as_app
PACKAGES=(postgresql redis-server nginx supervisor certbot iptables iptables-persistent
  python3 python3-venv git curl ssl-cert ca-certificates openssl
  libseccomp2)  # the decoding worker's seccomp filter (donations/sandbox.py)

DOMAIN="" API_DOMAIN="" EMAIL="" REPO="" REF="" MAX_UPLOAD_MB=20 HARDEN_SSH=0 FIREWALL=1
TRUSTED_PROXIES=()
PRINT_PACKAGES=0 ROLE=all LISTEN="" APP_HOSTS=() REPLICA_HOSTS=() GIVEN_DATABASE_URL="" GIVEN_REDIS_URL=""
REPLICA_URLS=()
CLEANUP=()
trap 'rm -rf "${CLEANUP[@]}"' EXIT
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) DOMAIN="${2:?--domain needs a name}"; shift 2 ;;
    --api-domain) API_DOMAIN="${2:?--api-domain needs a name}"; shift 2 ;;
    --email) EMAIL="${2:?--email needs an address}"; shift 2 ;;
    --repo) REPO="${2:?--repo needs a URL}"; shift 2 ;;
    --ref) REF="${2:?--ref needs a branch, tag or commit}"; shift 2 ;;
    --max-upload-mb) MAX_UPLOAD_MB="${2:?--max-upload-mb needs a number}"; shift 2 ;;
    --trusted-proxy) TRUSTED_PROXIES+=("${2:?--trusted-proxy needs an address}"); shift 2 ;;
    --harden-ssh) HARDEN_SSH=1; shift ;;
    --no-firewall) FIREWALL=0; shift ;;
    --role) ROLE="${2:?--role needs all, app or db}"; shift 2 ;;
    --listen) LISTEN="${2:?--listen needs an address}"; shift 2 ;;
    --app-host) APP_HOSTS+=("${2:?--app-host needs an address or network}"); shift 2 ;;
    --replica-host) REPLICA_HOSTS+=("${2:?--replica-host needs an address or network}"); shift 2 ;;
    --database-url) GIVEN_DATABASE_URL="${2:?--database-url needs a URL}"; shift 2 ;;
    --redis-url) GIVEN_REDIS_URL="${2:?--redis-url needs a URL}"; shift 2 ;;
    --replica-url) REPLICA_URLS+=("${2:?--replica-url needs a URL}"); shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --print-packages) PRINT_PACKAGES=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done

case "$ROLE" in
  all) ;;
  app) PACKAGES=(nginx supervisor certbot iptables iptables-persistent python3 python3-venv git
    curl ssl-cert ca-certificates openssl postgresql-client libseccomp2) ;;
  db) PACKAGES=(postgresql redis-server iptables iptables-persistent python3 openssl
    ca-certificates) ;;
  *) die "--role takes all, app or db, not $ROLE" ;;
esac
if [ "$PRINT_PACKAGES" = 1 ]; then
  echo "${PACKAGES[*]}"
  exit 0
fi

# --- Checks -------------------------------------------------------------------------------
[[ "$MAX_UPLOAD_MB" =~ ^[1-9][0-9]{0,3}$ ]] || die "--max-upload-mb takes a whole number of megabytes"
if [ -n "$DOMAIN" ] && [ -z "$EMAIL" ]; then
  die "--email is needed with --domain (Let's Encrypt sends expiry notices there)"
fi
if [ -n "$API_DOMAIN" ] && [ -z "$DOMAIN" ]; then
  die "--api-domain needs --domain"
fi
# is_address TEXT, is_network TEXT: an IPv4 or IPv6 address, or one with a /prefix. In bash,
# because a fresh host may not have python3 before the packages are installed.
hex_groups() { # hex groups separated by single colons (or nothing): their number
  [ -z "$1" ] && echo 0 && return
  [[ "$1" =~ ^[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*$ ]] || return 1
  local colons="${1//[^:]/}"
  echo $((${#colons} + 1))
}
is_address() {
  local part head tail
  if [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
    for part in "${BASH_REMATCH[@]:1}"; do
      [ $((10#$part)) -le 255 ] || return 1
    done
    return 0
  fi
  if [[ "$1" == *::* ]]; then
    head="$(hex_groups "${1%%::*}")" && tail="$(hex_groups "${1#*::}")" && [ $((head + tail)) -le 7 ]
  else
    [ "$(hex_groups "$1")" = 8 ] 2>/dev/null
  fi
}
is_network() {
  local address="${1%/*}" limit=32
  [[ "$address" == *:* ]] && limit=128
  is_address "$address" || return 1
  [[ "$1" != */* ]] || { [[ "${1##*/}" =~ ^[0-9]{1,3}$ ]] && [ $((10#${1##*/})) -le "$limit" ]; }
}
case "$ROLE" in
  all) ;;
  db)
    [ -n "$LISTEN" ] || die "--role db needs --listen ADDRESS (the private address app hosts reach)"
    is_address "$LISTEN" || die "--listen takes an IP address, not $LISTEN"
    [ ${#APP_HOSTS[@]} -gt 0 ] || die "--role db needs at least one --app-host CIDR"
    for network in "${APP_HOSTS[@]}" "${REPLICA_HOSTS[@]}"; do
      is_network "$network" || die "not an address or network: $network"
    done
    ;;
  app)
    [[ "$GIVEN_DATABASE_URL" =~ ^postgres(ql)?://[^[:space:]]+$ ]] ||
      die "--role app needs --database-url postgres://… (printed by the db host's install)"
    [[ "$GIVEN_REDIS_URL" =~ ^rediss?://[^[:space:]]+$ ]] ||
      die "--role app needs --redis-url redis://… (printed by the db host's install)"
    for url in "${REPLICA_URLS[@]}"; do
      [[ "$url" =~ ^postgres(ql)?://[^[:space:],]+$ ]] || die "not a postgres:// URL: $url"
    done
    ;;
esac
if [ "$DRY_RUN" = 1 ]; then
  say "Dry run: every step is printed as for a fresh host; nothing is changed"
else
  [ "$(id -u)" = 0 ] || die "run as root (sudo deploy/install.sh ...), or try --dry-run"
  grep -q '^12' /etc/debian_version 2>/dev/null || warn "this is not Debian 12; carrying on"
fi
SITE_NAME="${DOMAIN:-$(hostname -f 2>/dev/null || hostname)}"
HOSTS="$SITE_NAME${API_DOMAIN:+,$API_DOMAIN}"
ORIGINS="https://$SITE_NAME${API_DOMAIN:+,https://$API_DOMAIN}"
# git runs as root on checkouts that other users may own (the one this script came from,
# the app's): say that both are trusted.
GIT=(git -c "safe.directory=$SOURCE" -c "safe.directory=$APP")
if "${GIT[@]}" -C "$SOURCE" rev-parse --git-dir >/dev/null 2>&1; then
  COMMIT="$("${GIT[@]}" -C "$SOURCE" rev-parse --verify --quiet "${REF:-HEAD}^{commit}")" ||
    die "$SOURCE has no branch, tag or commit called $REF"
  REF="${REF:-HEAD}"
  REPO="${REPO:-$("${GIT[@]}" -C "$SOURCE" remote get-url origin 2>/dev/null || echo "$SOURCE")}"
  [ -z "$("${GIT[@]}" -C "$SOURCE" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
    warn "$SOURCE has uncommitted changes; only committed work is installed"
else
  [ "$DRY_RUN" = 1 ] || die "$SOURCE is not a git checkout: clone ImageMonkey with git and run this from there"
  REF="${REF:-HEAD}" COMMIT="$REF" REPO="${REPO:-$SOURCE}"
fi

# On a dry run every probe answers "missing", so the whole set-up is shown.
missing_user() { [ "$DRY_RUN" = 1 ] || ! id "$APP_USER" >/dev/null 2>&1; }
missing_path() { [ "$DRY_RUN" = 1 ] || [ ! -e "$1" ]; }
missing_package() {
  [ "$DRY_RUN" = 1 ] || [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" != "install ok installed" ]
}
psql_value() { runuser -u postgres -- psql -d postgres -tAq -v ON_ERROR_STOP=1 -c "$1"; }

# install_file SOURCE TARGET MODE: copy when different; true when the target changed.
install_file() {
  if [ "$DRY_RUN" != 1 ] && cmp -s "$1" "$2"; then
    return 1
  fi
  run install -D -m "$3" "$1" "$2"
}

# --- Steps --------------------------------------------------------------------------------
install_packages() {
  say "Debian packages: ${PACKAGES[*]}"
  local wanted=() package
  for package in "${PACKAGES[@]}"; do
    missing_package "$package" && wanted+=("$package")
  done
  if [ ${#wanted[@]} = 0 ]; then
    note "all installed"
    return
  fi
  # iptables-persistent asks whether to save the current rules; we install our own.
  printf '  + debconf-set-selections: iptables-persistent/autosave_v4 and _v6 false\n'
  if [ "$DRY_RUN" != 1 ]; then
    printf '%s\n' "iptables-persistent iptables-persistent/autosave_v4 boolean false" \
      "iptables-persistent iptables-persistent/autosave_v6 boolean false" | debconf-set-selections
  fi
  run apt-get update -q
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${wanted[@]}"
}

create_user() {
  say "The $APP_USER user (owns the app and its data; no password, no login shell)"
  if missing_user; then
    run useradd --system --create-home --home-dir "$APP_HOME" --shell /usr/sbin/nologin \
      --user-group "$APP_USER"
  else
    note "exists"
  fi
  let_nginx_connect || true # nginx is (re)loaded later
}

create_folders() {
  say "Folders"
  run install -d -o root -g "$APP_USER" -m 750 "$ENV_DIR"
  run install -d -o "$APP_USER" -g "$APP_USER" -m 755 "$DATA_DIR" "$DATA_DIR/static" \
    "$MEDIA_ROOT" "$MEDIA_ROOT/public"
  # Pictures awaiting review: nginx may read them (for the moderator's X-Accel-Redirect),
  # nobody else.
  run install -d -o "$APP_USER" -g www-data -m 750 "$MEDIA_ROOT/private"
  run install -d -o "$APP_USER" -g adm -m 750 "$LOG_DIR"
  run install -d -o "$APP_USER" -g "$APP_USER" -m 700 "$BACKUP_DIR"
  run install -d -o root -g root -m 755 "$ACME_ROOT"
}

setup_database() {
  say "PostgreSQL: role $APP_USER and database $DB_NAME"
  run systemctl enable --now postgresql
  local sql="ALTER ROLE $APP_USER LOGIN PASSWORD '<generated>'"
  if [ "$DRY_RUN" = 1 ] || [ "$(psql_value "SELECT 1 FROM pg_roles WHERE rolname='$APP_USER'")" != 1 ]; then
    sql="CREATE ROLE $APP_USER LOGIN PASSWORD '<generated>'"
  fi
  # The password goes through stdin, never onto a command line.
  printf '  + runuser -u postgres -- psql <<< "%s"\n' "$sql"
  if [ "$DRY_RUN" != 1 ]; then
    printf '%s;\n' "${sql/<generated>/$DB_PASSWORD}" | runuser -u postgres -- psql -d postgres -q -v ON_ERROR_STOP=1
  fi
  if [ "$DRY_RUN" = 1 ] || [ "$(psql_value "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'")" != 1 ]; then
    run runuser -u postgres -- createdb --owner "$APP_USER" --encoding UTF8 "$DB_NAME"
  fi
  run systemctl enable --now redis-server
}

fetch_code() {
  say "The app in $APP at $REF ($COMMIT)"
  # Cloned as root, because this checkout may sit where the app's user cannot read (in
  # root's home); the app's user owns the result.
  local git=("${GIT[@]}" -C "$APP")
  if missing_path "$APP/.git"; then
    run "${GIT[@]}" clone --quiet --no-checkout "$SOURCE" "$APP"
  fi
  run "${git[@]}" fetch --quiet --tags "$SOURCE" "+HEAD:refs/remotes/installed-from/HEAD" \
    "+refs/heads/*:refs/remotes/installed-from/*"
  run "${git[@]}" checkout --quiet --force --detach "$COMMIT"
  run "${git[@]}" remote set-url origin "$REPO"
  # update.sh fetches from there as the app's user, and git refuses a repository on this
  # host that another user owns unless it is listed as safe.
  if [ -d "$REPO" ]; then
    local path
    for path in "$REPO" "$REPO/.git"; do
      if [ "$DRY_RUN" = 1 ] ||
        ! "${AS_APP[@]}" git config --global --get-all safe.directory | grep -qxF "$path"; then
        run "${AS_APP[@]}" git config --global --add safe.directory "$path"
      fi
    done
  fi
  run chown -R "$APP_USER:$APP_USER" "$APP"
  say "Python packages in $APP/.venv from requirements.lock, every file hash-checked (tools/bootstrap.sh)"
  run "${AS_APP[@]}" "$APP/tools/bootstrap.sh"
}

write_env_file() {
  say "Environment file $ENV_FILE (mode 600; secrets kept when it exists)"
  local managed="SECRET_KEY DEBUG HTTPS ALLOWED_HOSTS CSRF_TRUSTED_ORIGINS DATABASE_URL DATABASE_REPLICA_URLS REDIS_URL CACHE_KEY_PREFIX DATA_DIR MEDIA_ROOT MAX_UPLOAD_MB RATELIMIT_IP_META_KEY PRIVATE_MEDIA_X_ACCEL GUNICORN_BIND WORKERS GUNICORN_TIMEOUT LOG_LEVEL"
  local workers=$(($(nproc) * 2 + 1))
  [ "$workers" -le 9 ] || workers=9
  local content
  content="$(
    cat <<ENV
# ImageMonkey's settings (README: Configuration). Written by deploy/install.sh, which
# keeps SECRET_KEY and the database and Redis passwords; lines with other names are kept.
SECRET_KEY=$SECRET_KEY
DEBUG=0
HTTPS=1
ALLOWED_HOSTS=$HOSTS
CSRF_TRUSTED_ORIGINS=$ORIGINS
DATABASE_URL=$DATABASE_URL
REDIS_URL=$REDIS_URL
CACHE_KEY_PREFIX=im
DATA_DIR=$DATA_DIR
MEDIA_ROOT=$MEDIA_ROOT
MAX_UPLOAD_MB=$MAX_UPLOAD_MB
RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP
PRIVATE_MEDIA_X_ACCEL=1
GUNICORN_BIND=unix:$SOCKET_DIR/gunicorn.sock
WORKERS=$workers
GUNICORN_TIMEOUT=60
LOG_LEVEL=INFO
ENV
    if [ ${#REPLICA_URLS[@]} -gt 0 ]; then
      printf 'DATABASE_REPLICA_URLS=%s\n' "$(IFS=,; echo "${REPLICA_URLS[*]}")"
    fi
    if [ -r "$ENV_FILE" ]; then
      grep -Ev "^(#|$(tr ' ' '|' <<<"$managed")=|$)" "$ENV_FILE" || true
    fi
  )"
  if [ "$DRY_RUN" = 1 ]; then
    printf '  + write %s (owner %s, mode 600):\n' "$ENV_FILE" "$APP_USER"
    printf '      %s\n' "${content//$'\n'/$'\n      '}"
    return
  fi
  local temporary
  temporary="$(mktemp "$ENV_DIR/.env.XXXXXX")"
  printf '%s\n' "$content" >"$temporary"
  chown "$APP_USER:$APP_USER" "$temporary"
  chmod 600 "$temporary"
  mv "$temporary" "$ENV_FILE"
}

load_secrets() {
  SECRET_KEY="$(env_get SECRET_KEY "$ENV_FILE")"
  DB_PASSWORD="$(env_get DATABASE_URL "$ENV_FILE" | sed -n 's#^postgres://[^:]*:\([^@]*\)@.*#\1#p')"
  REDIS_PASSWORD="$(env_get REDIS_URL "$ENV_FILE" | sed -n 's#^redis://[^:]*:\([^@]*\)@.*#\1#p')"
  if [ "$DRY_RUN" = 1 ]; then
    SECRET_KEY="<generated>" DB_PASSWORD="<generated>" REDIS_PASSWORD="<generated>"
  fi
  SECRET_KEY="${SECRET_KEY:-$(openssl rand -base64 48 | tr -d '\n=+/')}"
  DB_PASSWORD="${DB_PASSWORD:-$(openssl rand -hex 24)}"
  REDIS_PASSWORD="${REDIS_PASSWORD:-$(openssl rand -hex 32)}"
  REPLICATION_PASSWORD="$(env_get REPLICATION_PASSWORD "$ENV_FILE")"
  [ "$DRY_RUN" != 1 ] || REPLICATION_PASSWORD="<generated>"
  REPLICATION_PASSWORD="${REPLICATION_PASSWORD:-$(openssl rand -hex 24)}"
  local host=127.0.0.1
  [ "$ROLE" != db ] || host="$LISTEN"
  DATABASE_URL="postgres://$APP_USER:$DB_PASSWORD@$host:5432/$DB_NAME"
  REDIS_URL="redis://$APP_USER:$REDIS_PASSWORD@$host:6379/0"
  if [ "$ROLE" = app ]; then
    DATABASE_URL="$GIVEN_DATABASE_URL" REDIS_URL="$GIVEN_REDIS_URL"
  fi
}

# The database host: PostgreSQL and Redis also listen on the private address, for the app
# hosts only (pg_hba.conf, the firewall), and replicas may stream from the primary.
open_database_host() {
  say "PostgreSQL and Redis on $LISTEN for the app hosts (${APP_HOSTS[*]})"
  # At boot both start once the network is up, which is not when a late address (DHCP,
  # cloud-init) arrives: PostgreSQL would listen on localhost alone until restarted, and
  # Redis would fail to start. So each waits (up to 90 s) for $LISTEN first. The wait runs
  # outside the unit's sandbox ("+"): Debian's redis-server.service may execute redis-server
  # alone, and reach no netlink socket.
  local wait="ExecStartPre=+/bin/sh -c 'i=0; until [ -n \"\$\$(ip -o address show to $LISTEN)\" ] || [ \$\$i -ge 90 ]; do i=\$\$((i + 1)); sleep 1; done'"
  local unit dropin="# deploy/install.sh --role db: wait for --listen $LISTEN before starting.
[Unit]
Wants=network-online.target
After=network-online.target
[Service]
TimeoutStartSec=300
$wait"
  for unit in postgresql@15-main redis-server; do
    if [ "$DRY_RUN" = 1 ] || [ "$(cat "/etc/systemd/system/$unit.service.d/imagemonkey.conf" 2>/dev/null)" != "$dropin" ]; then
      printf '  + write /etc/systemd/system/%s.service.d/imagemonkey.conf:\n      %s\n' "$unit" "${dropin//$'\n'/$'\n      '}"
      if [ "$DRY_RUN" != 1 ]; then
        install -d -m 755 "/etc/systemd/system/$unit.service.d"
        printf '%s\n' "$dropin" >"/etc/systemd/system/$unit.service.d/imagemonkey.conf"
      fi
      run systemctl daemon-reload
    fi
  done
  local conf_dir=/etc/postgresql/15/main hba
  hba="$(
    printf '# BEGIN imagemonkey (deploy/install.sh --role db): app hosts and replicas\n'
    for network in "${APP_HOSTS[@]}"; do
      printf 'host %s %s %s scram-sha-256\n' "$DB_NAME" "$APP_USER" "$network"
    done
    for network in "${REPLICA_HOSTS[@]}"; do
      printf 'host replication %s_replication %s scram-sha-256\n' "$APP_USER" "$network"
    done
    printf '# END imagemonkey\n'
  )"
  local settings="listen_addresses = 'localhost,$LISTEN'
wal_level = replica
max_wal_senders = 10
wal_keep_size = 1GB
password_encryption = scram-sha-256"
  # Restarted only when its settings change: a restart drops every app host's connections.
  local restart=1
  if [ "$DRY_RUN" = 1 ]; then
    printf '  + write %s/conf.d/imagemonkey.conf:\n      %s\n' "$conf_dir" "${settings//$'\n'/$'\n      '}"
    printf '  + replace the imagemonkey block at the end of %s/pg_hba.conf:\n      %s\n' \
      "$conf_dir" "${hba//$'\n'/$'\n      '}"
  else
    # Debian's postgresql.conf reads conf.d/; PostgreSQL 15's pg_hba.conf includes nothing,
    # so our lines are one marked block at its end, replaced when they differ.
    restart=0
    install -d -o postgres -g postgres -m 755 "$conf_dir/conf.d"
    if [ "$(cat "$conf_dir/conf.d/imagemonkey.conf" 2>/dev/null)" != "$settings" ]; then
      printf '%s\n' "$settings" >"$conf_dir/conf.d/imagemonkey.conf"
      restart=1
    fi
    local others
    others="$(sed '/^# BEGIN imagemonkey/,/^# END imagemonkey/d' "$conf_dir/pg_hba.conf")"
    if [ "$(cat "$conf_dir/pg_hba.conf")" != "$others"$'\n'"$hba" ]; then
      printf '%s\n%s\n' "$others" "$hba" >"$conf_dir/pg_hba.conf"
      restart=1
    fi
  fi
  if [ ${#REPLICA_HOSTS[@]} -gt 0 ]; then
    local sql="CREATE ROLE ${APP_USER}_replication REPLICATION LOGIN PASSWORD '<generated>'"
    if [ "$DRY_RUN" != 1 ] && [ "$(psql_value "SELECT 1 FROM pg_roles WHERE rolname='${APP_USER}_replication'")" = 1 ]; then
      sql="ALTER ROLE ${APP_USER}_replication REPLICATION LOGIN PASSWORD '<generated>'"
    fi
    printf '  + runuser -u postgres -- psql <<< "%s"\n' "$sql"
    [ "$DRY_RUN" = 1 ] || printf '%s;\n' "${sql/<generated>/$REPLICATION_PASSWORD}" |
      runuser -u postgres -- psql -d postgres -q -v ON_ERROR_STOP=1
  fi
  if [ "$restart" = 1 ]; then
    run systemctl restart postgresql
  else
    note "PostgreSQL's settings unchanged: not restarted"
  fi
  local redis_network=/etc/redis/imagemonkey-network.conf
  local bind="bind 127.0.0.1 -::1 $LISTEN"$'\n'"protected-mode yes"
  printf '  + write %s: bind 127.0.0.1 -::1 %s\n' "$redis_network" "$LISTEN"
  restart=1
  if [ "$DRY_RUN" != 1 ]; then
    restart=0
    if [ "$(cat "$redis_network" 2>/dev/null)" != "$bind" ]; then
      printf '%s\n' "$bind" >"$redis_network"
      restart=1
    fi
    if ! grep -qx "include $redis_network" "$REDIS_CONF"; then
      printf '\ninclude %s\n' "$redis_network" >>"$REDIS_CONF"
      restart=1
    fi
  fi
  if [ "$restart" = 1 ]; then
    run systemctl restart redis-server
  else
    note "Redis's addresses unchanged: not restarted"
  fi
}

# The database host's environment file: what the app hosts are given, and the secrets.
write_db_env_file() {
  say "Environment file $ENV_FILE (mode 600): the URLs for --role app, and the secrets"
  local content="# ImageMonkey's database host (deploy/install.sh --role db). Give the app hosts
# DATABASE_URL and REDIS_URL (install.sh --role app --database-url … --redis-url …).
DATABASE_URL=$DATABASE_URL
REDIS_URL=$REDIS_URL
REPLICATION_PASSWORD=$REPLICATION_PASSWORD"
  if [ "$DRY_RUN" = 1 ]; then
    printf '  + write %s (owner root, mode 600):\n      %s\n' "$ENV_FILE" "${content//$'\n'/$'\n      '}"
    return
  fi
  install -d -o root -g root -m 700 "$ENV_DIR"
  (umask 077 && printf '%s\n' "$content" >"$ENV_FILE")
}

# The firewall of a database host: ssh, and PostgreSQL and Redis from the app hosts and
# replicas only; no web ports.
setup_db_firewall() {
  say "Firewall: incoming traffic dropped except ssh, and 5432/6379 from ${APP_HOSTS[*]} ${REPLICA_HOSTS[*]}"
  if [ "$FIREWALL" = 0 ]; then
    note "skipped (--no-firewall)"
    return
  fi
  local rules
  rules="$(mktemp)"
  CLEANUP+=("$rules")
  {
    grep -v -- '--dports 80,443' "$HERE/iptables/rules.v4" | sed '/^COMMIT$/d'
    for network in "${APP_HOSTS[@]}"; do
      printf -- '-A INPUT -s %s -p tcp -m multiport --dports 5432,6379 -m conntrack --ctstate NEW -j ACCEPT\n' "$network"
    done
    for network in "${REPLICA_HOSTS[@]}"; do
      printf -- '-A INPUT -s %s -p tcp --dport 5432 -m conntrack --ctstate NEW -j ACCEPT\n' "$network"
    done
    echo COMMIT
  } >"$rules"
  sed 's/^/      /' "$rules" | grep -- '^      -A INPUT -s' || true
  run iptables-restore --test "$rules"
  install_file "$rules" /etc/iptables/rules.v4 640 || true
  run iptables-restore /etc/iptables/rules.v4
  run systemctl enable netfilter-persistent
}

prepare_app() {
  say "Database tables, labels and static files"
  manage migrate --no-input
  manage populate_labels
  manage make_groups
  manage collectstatic --no-input -v 0
}

# render_and_install CERT KEY: render every config with deploy/render.py and install the
# files that changed. Sets CONFIG_CHANGED=1 when nginx's files changed.
render_and_install() {
  local renderer="$APP/deploy/render.py" out
  [ -r "$renderer" ] || renderer="$HERE/render.py"
  out="$(mktemp -d)"
  CLEANUP+=("$out")
  local vars=(--var "server_name=$SITE_NAME" --var "api_server_name=$API_DOMAIN"
    --var "ssl_certificate=$1" --var "ssl_certificate_key=$2" --var "app_root=$APP"
    --var "app_user=$APP_USER" --var "env_file=$ENV_FILE" --var "data_dir=$DATA_DIR"
    --var "media_root=$MEDIA_ROOT" --var "socket_dir=$SOCKET_DIR"
    --var "max_upload_mb=$MAX_UPLOAD_MB" --var "app_log_dir=$LOG_DIR"
    --var "acme_root=$ACME_ROOT" --var "backup_dir=$BACKUP_DIR"
    --var "redis_user=$APP_USER" --var "redis_key_prefix=im"
    --var "redis_password_sha256=$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -c1-64)")
  [ ${#TRUSTED_PROXIES[@]} = 0 ] || vars+=(--var "trusted_proxies=${TRUSTED_PROXIES[*]}")
  say "Configuration files, rendered by deploy/render.py"
  printf '  + python3 %q' "$renderer"
  printf ' %q' "${vars[@]}"
  printf ' --out %q\n' "$out"
  python3 "$renderer" "${vars[@]}" --out "$out" >/dev/null
  CONFIG_CHANGED=0
  install_file "$out/nginx/imagemonkey.conf" /etc/nginx/sites-available/imagemonkey 644 && CONFIG_CHANGED=1
  install_file "$out/nginx/imagemonkey-file-headers.conf" \
    /etc/nginx/snippets/imagemonkey-file-headers.conf 644 && CONFIG_CHANGED=1
  install_file "$out/supervisor/imagemonkey.conf" /etc/supervisor/conf.d/imagemonkey.conf 644 || true
  local unit
  for unit in imagemonkey-orphans.service imagemonkey-orphans.timer \
    imagemonkey-backup.service imagemonkey-backup.timer \
    imagemonkey-clearsessions.service imagemonkey-clearsessions.timer \
    imagemonkey-purge-rejected.service imagemonkey-purge-rejected.timer; do
    install_file "$out/systemd/$unit" "/etc/systemd/system/$unit" 644 || true
  done
  install_file "$out/systemd/imagemonkey.tmpfiles" /etc/tmpfiles.d/imagemonkey.conf 644 || true
  [ "$ROLE" = app ] || install_redis_users "$out"  # an app host's Redis is the db host's
}

# render_redis_users: the Redis users file alone, for a database host.
render_redis_users() {
  local out
  out="$(mktemp -d)"
  CLEANUP+=("$out")
  say "Redis users, rendered by deploy/render.py"
  python3 "$HERE/render.py" --var "server_name=$SITE_NAME" --var "redis_user=$APP_USER" \
    --var "redis_key_prefix=im" \
    --var "redis_password_sha256=$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -c1-64)" \
    --out "$out" >/dev/null
  install_redis_users "$out"
}

# install_redis_users OUT: Redis asks for the password in REDIS_URL: only the app's user
# gets in.
install_redis_users() {
  local out="$1"
  local redis_changed=0
  install_file "$out/redis/imagemonkey.conf" "$REDIS_USERS" 640 && redis_changed=1
  run chown root:redis "$REDIS_USERS"
  if [ "$DRY_RUN" = 1 ] || ! grep -qx "include $REDIS_USERS" "$REDIS_CONF"; then
    printf '  + append to %s: include %s\n' "$REDIS_CONF" "$REDIS_USERS"
    [ "$DRY_RUN" = 1 ] || printf '\n# ImageMonkey (deploy/install.sh): its users, last.\ninclude %s\n' \
      "$REDIS_USERS" >>"$REDIS_CONF"
    redis_changed=1
  fi
  if [ "$redis_changed" = 1 ]; then
    run systemctl restart redis-server
  fi
}

enable_sites() {
  say "nginx: the ImageMonkey site replaces Debian's default site"
  run ln -sfn /etc/nginx/sites-available/imagemonkey /etc/nginx/sites-enabled/imagemonkey
  # Debian's default site also claims default_server on port 80.
  if [ "$DRY_RUN" = 1 ] || [ -e /etc/nginx/sites-enabled/default ]; then
    run rm -f /etc/nginx/sites-enabled/default
  fi
  run systemd-tmpfiles --create /etc/tmpfiles.d/imagemonkey.conf
  run nginx -t -q
  run systemctl enable nginx
  run systemctl reload-or-restart nginx
}

start_app() {
  say "gunicorn under supervisor, and the daily jobs (systemd timers)"
  run systemctl enable --now supervisor
  if [ "$DRY_RUN" != 1 ]; then
    for _ in $(seq 1 20); do
      supervisorctl pid >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  local running
  running="$(supervisorctl pid "$PROGRAM" 2>/dev/null || true)"
  run supervisorctl reread
  run supervisorctl update "$PROGRAM"
  # A host that already ran the app loads the new code and settings gracefully.
  if [ "${running:-0}" -gt 0 ] 2>/dev/null; then
    reload_app
  fi
  run systemctl daemon-reload
  run systemctl enable --now imagemonkey-orphans.timer imagemonkey-backup.timer \
    imagemonkey-clearsessions.timer imagemonkey-purge-rejected.timer
  say "Health check through gunicorn's socket"
  if [ "$DRY_RUN" = 1 ]; then
    printf '  + curl --unix-socket %s -H "Host: %s" http://localhost/healthz\n' \
      "$SOCKET_DIR/gunicorn.sock" "$SITE_NAME"
  else
    healthy || die "the app does not answer /healthz; see $LOG_DIR/gunicorn.log"
    note "ok"
  fi
}

obtain_certificate() {
  # Certificates need the challenge served over HTTP first, so nginx starts with the
  # self-signed certificate, certbot proves the domain, and nginx then switches over.
  say "TLS certificate"
  if [ -z "$DOMAIN" ]; then
    note "no --domain: the self-signed certificate stays (browsers will warn)"
    return
  fi
  local live="/etc/letsencrypt/live/$DOMAIN"
  if missing_path "$live/fullchain.pem"; then
    local names=(-d "$DOMAIN")
    [ -z "$API_DOMAIN" ] || names+=(-d "$API_DOMAIN")
    run certbot certonly --webroot -w "$ACME_ROOT" --cert-name "$DOMAIN" "${names[@]}" \
      --email "$EMAIL" --agree-tos --non-interactive --keep-until-expiring \
      --deploy-hook "systemctl reload nginx"
  else
    note "$live exists; certbot's timer renews it"
  fi
  render_and_install "$live/fullchain.pem" "$live/privkey.pem"
  if [ "$CONFIG_CHANGED" = 1 ]; then
    run nginx -t -q
    run systemctl reload nginx
  fi
}

setup_firewall() {
  say "Firewall: incoming traffic dropped except ssh (22), HTTP and HTTPS"
  if [ "$FIREWALL" = 0 ]; then
    note "skipped (--no-firewall)"
    return
  fi
  local ports
  ports="$( (sshd -T 2>/dev/null || true) | sed -n 's/^port //p' | sort -u | tr '\n' ' ')"
  if [ -n "$ports" ] && [ "$ports" != "22 " ]; then
    die "sshd listens on port(s) $ports but the rules allow 22 only: edit deploy/iptables/rules.v4 or pass --no-firewall"
  fi
  run iptables-restore --test "$APP/deploy/iptables/rules.v4"
  install_file "$APP/deploy/iptables/rules.v4" /etc/iptables/rules.v4 640 || true
  run iptables-restore /etc/iptables/rules.v4
  if [ "$DRY_RUN" = 1 ] || [ -e /proc/net/if_inet6 ]; then
    run ip6tables-restore --test "$APP/deploy/iptables/rules.v6"
    install_file "$APP/deploy/iptables/rules.v6" /etc/iptables/rules.v6 640 || true
    run ip6tables-restore /etc/iptables/rules.v6
  else
    note "IPv6 is off in this kernel: no IPv6 rules needed"
  fi
  run systemctl enable netfilter-persistent
}

harden_ssh() {
  [ "$HARDEN_SSH" = 1 ] || return 0
  say "ssh: no root login"
  if [ "$DRY_RUN" != 1 ]; then
    local sudoers
    sudoers="$(getent group sudo | cut -d: -f4)"
    [ -n "$sudoers" ] || die "no user is in the sudo group: add one (adduser NAME sudo) and check that it can log in, then run this again"
  fi
  if [ "$DRY_RUN" = 1 ]; then
    printf '  + write /etc/ssh/sshd_config.d/10-imagemonkey.conf: PermitRootLogin no\n'
  else
    printf '# Written by deploy/install.sh --harden-ssh\nPermitRootLogin no\n' \
      >/etc/ssh/sshd_config.d/10-imagemonkey.conf
  fi
  run sshd -t
  run systemctl reload ssh
}

# --- The set-up, in order -------------------------------------------------------------------
if [ "$ROLE" = db ]; then
  install_packages
  load_secrets
  setup_database
  render_redis_users
  open_database_host
  write_db_env_file
  setup_db_firewall
  harden_ssh
  say "The database host is ready. On each app host, with DATABASE_URL and REDIS_URL from $ENV_FILE here:"
  note "sudo deploy/install.sh --role app --database-url URL --redis-url URL --domain … --trusted-proxy …"
  [ ${#REPLICA_HOSTS[@]} = 0 ] ||
    note "replicas: pg_basebackup -h $LISTEN -U ${APP_USER}_replication -D /var/lib/postgresql/15/main -R -X stream (README: Several hosts)"
  exit 0
fi
install_packages
create_user
create_folders
load_secrets
if [ "$ROLE" = all ]; then
  setup_database
fi
fetch_code
write_env_file
prepare_app
if [ "$DRY_RUN" != 1 ] && [ -n "$DOMAIN" ] && [ -e "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" ]; then
  render_and_install "/etc/letsencrypt/live/$DOMAIN/fullchain.pem" "/etc/letsencrypt/live/$DOMAIN/privkey.pem"
else
  if missing_path "$SNAKEOIL_CERT"; then
    run make-ssl-cert generate-default-snakeoil
  fi
  render_and_install "$SNAKEOIL_CERT" "$SNAKEOIL_KEY"
fi
enable_sites
start_app
obtain_certificate
setup_firewall
harden_ssh

say "ImageMonkey runs at https://$SITE_NAME/"
note "first admin account:  sudo -u $APP_USER $APP/deploy/with-env $ENV_FILE $APP/.venv/bin/python $APP/manage.py createsuperuser"
note "new versions:         sudo $APP/deploy/update.sh --ref main"
note "backups:              nightly into $BACKUP_DIR (deploy/backup.sh; restore with deploy/restore.sh)"
