#!/usr/bin/env bash
# Restore an ImageMonkey backup made by deploy/backup.sh.
#
#   deploy/restore.sh --dump db-<time>.dump [--media media-<time>.tar.gz]
#                     [--env-file /etc/imagemonkey/env | --database-url URL --media-root DIR]
#                     [--clean]
#
# The database is restored in one transaction: it is complete or untouched. A database
# that already holds tables is refused unless --clean is given, which drops what the dump
# contains first. Media files are unpacked into MEDIA_ROOT (existing files with the same
# name are replaced by the backup's copy). On a live host stop the app first
# (supervisorctl stop imagemonkey), run this as the app's user, then start it again; the
# README's Deploying section has the whole procedure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

ENV_FILE=/etc/imagemonkey/env
DUMP="" MEDIA="" DATABASE_URL="" MEDIA_ROOT="" CLEAN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dump) DUMP="${2:?}"; shift 2 ;;
    --media) MEDIA="${2:?}"; shift 2 ;;
    --env-file) ENV_FILE="${2:?}"; shift 2 ;;
    --database-url) DATABASE_URL="${2:?}"; shift 2 ;;
    --media-root) MEDIA_ROOT="${2:?}"; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
done
[ -r "$DUMP" ] || die "give the database dump with --dump (cannot read ${DUMP:-nothing})"
[ -z "$MEDIA" ] || [ -r "$MEDIA" ] || die "cannot read $MEDIA"
DATABASE_URL="${DATABASE_URL:-$(env_get DATABASE_URL "$ENV_FILE")}"
[ -n "$DATABASE_URL" ] || die "no DATABASE_URL: pass --database-url or --env-file"
if [ -n "$MEDIA" ] && [ -z "$MEDIA_ROOT" ]; then
  MEDIA_ROOT="$(env_get MEDIA_ROOT "$ENV_FILE")"
  MEDIA_ROOT="${MEDIA_ROOT:-$(env_get DATA_DIR "$ENV_FILE")/media}"
fi

eval "$(pg_env "$DATABASE_URL")"
pg_restore --list "$DUMP" >/dev/null || die "$DUMP is not a pg_dump archive"
tables="$(psql -tAq -v ON_ERROR_STOP=1 -c \
  "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")"
options=(--no-owner --no-acl --exit-on-error --single-transaction)
if [ "$tables" != 0 ]; then
  [ "$CLEAN" = 1 ] || die "database $PGDATABASE already has $tables table(s): pass --clean to replace them"
  options+=(--clean --if-exists)
fi
say "Database $PGDATABASE ← $DUMP"
pg_restore "${options[@]}" --dbname="$PGDATABASE" "$DUMP"

if [ -n "$MEDIA" ]; then
  say "Media files → $MEDIA_ROOT"
  mkdir -p "$MEDIA_ROOT"
  tar --extract --gzip --file="$MEDIA" --directory="$MEDIA_ROOT" --no-overwrite-dir
fi
say "Restored. Check the files against the database with: manage.py orphans"
