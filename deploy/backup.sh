#!/usr/bin/env bash
# Back up ImageMonkey while it runs: the database, then the image files.
#
#   deploy/backup.sh [--env-file /etc/imagemonkey/env] [--dest /var/backups/imagemonkey]
#                    [--keep-days 14]
#
# Writes <dest>/db-<UTC time>.dump (pg_dump's custom format) and
# <dest>/media-<UTC time>.tar.gz, then deletes backups older than --keep-days.
# - pg_dump reads the whole database in one transaction snapshot: the dump is consistent
#   even while votes arrive, and it blocks no writer.
# - The media tarball is made after the dump. Image files are written once under names
#   that never change, so every file the dump refers to already exists when tar runs.
# - Files are written under a temporary name and renamed when complete: a backup that
#   exists is whole.
# The systemd timer imagemonkey-backup.timer runs this nightly as the app's user. Restore
# with deploy/restore.sh (README: Deploying → Restoring a backup).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

ENV_FILE=/etc/imagemonkey/env
DEST=/var/backups/imagemonkey
KEEP_DAYS=14
while [ $# -gt 0 ]; do
  case "$1" in
    --env-file) ENV_FILE="${2:?}"; shift 2 ;;
    --dest) DEST="${2:?}"; shift 2 ;;
    --keep-days) KEEP_DAYS="${2:?}"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
done
[[ "$KEEP_DAYS" =~ ^[0-9]+$ ]] || die "--keep-days takes a whole number"
[ -r "$ENV_FILE" ] || die "cannot read $ENV_FILE"
DATABASE_URL="$(env_get DATABASE_URL "$ENV_FILE")"
[ -n "$DATABASE_URL" ] || die "$ENV_FILE sets no DATABASE_URL"
MEDIA_ROOT="$(env_get MEDIA_ROOT "$ENV_FILE")"
MEDIA_ROOT="${MEDIA_ROOT:-$(env_get DATA_DIR "$ENV_FILE")/media}"
[ -d "$MEDIA_ROOT" ] || die "no media folder at $MEDIA_ROOT"

umask 077
mkdir -p "$DEST"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
dump="$DEST/db-$stamp.dump"
media="$DEST/media-$stamp.tar.gz"
trap 'rm -f "$dump.partial" "$media.partial"' EXIT

say "Database → $dump"
eval "$(pg_env "$DATABASE_URL")"
pg_dump --format=custom --compress=6 --file="$dump.partial"
mv "$dump.partial" "$dump"

say "Media files in $MEDIA_ROOT → $media"
# A picture moderated while tar runs moves between public/ and private/: tar then warns
# that a file vanished, and the copy at its other place is in the dump's state anyway
# (see `manage.py orphans` after a restore). Exit status 1 means exactly such warnings.
status=0
tar --create --gzip --file="$media.partial" --directory="$MEDIA_ROOT" --exclude='.tmp-*' \
  --warning=no-file-changed --warning=no-file-removed . || status=$?
[ "$status" -le 1 ] || die "tar failed (exit status $status)"
mv "$media.partial" "$media"

say "Removing backups older than $KEEP_DAYS days"
find "$DEST" -maxdepth 1 -type f \( -name 'db-*.dump' -o -name 'media-*.tar.gz' \) \
  -mtime +"$KEEP_DAYS" -print -delete
note "$(du -h "$dump" | cut -f1) database, $(du -h "$media" | cut -f1) media"
