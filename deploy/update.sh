#!/usr/bin/env bash
# Deploy another version of ImageMonkey without dropping a request:
#   sudo /home/imagemonkey/app/deploy/update.sh --ref main      (a branch, tag or commit)
#
# fetch → checkout → install packages → migrate → collectstatic → graceful reload (HUP:
# new workers start, old ones finish their requests) → health check. When any step fails,
# the previous commit is checked out again, installed and reloaded, and the script fails.
#
# Migrations are not reversed by a rollback: write them so that the previous release still
# runs on the new schema (add first, remove in a later release). Configuration templates
# (nginx, supervisor) are applied by running deploy/install.sh again.
#
# Options: --ref REF (default main), --app-root DIR, --env-file FILE, --user NAME.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
. "$HERE/lib.sh"

REF=main
APP="$(cd "$HERE/.." && pwd)"
ENV_FILE=/etc/imagemonkey/env
APP_USER=imagemonkey
PROGRAM=imagemonkey
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) REF="${2:?--ref needs a branch, tag or commit}"; shift 2 ;;
    --app-root) APP="${2:?}"; shift 2 ;;
    --env-file) ENV_FILE="${2:?}"; shift 2 ;;
    --user) APP_USER="${2:?}"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root (sudo)"
[ -r "$ENV_FILE" ] || die "cannot read $ENV_FILE (was deploy/install.sh run?)"
APP_HOME="$(getent passwd "$APP_USER" | cut -d: -f6)"
as_app
git_app() { run "${AS_APP[@]}" git "$@"; }

# deploy REVISION: every step, stopping at the first that fails.
deploy() {
  git_app checkout --quiet --force --detach "$1" || return 1
  run "${AS_APP[@]}" "$APP/tools/bootstrap.sh" || return 1
  manage migrate --no-input || return 1
  manage make_groups || return 1
  manage collectstatic --no-input -v 0 || return 1
  reload_app || return 1
  say "Health check"
  healthy
}

previous="$("${AS_APP[@]}" git rev-parse HEAD)"
say "Fetching $REF"
git_app fetch --quiet --prune --tags origin
target=""
for candidate in "origin/$REF" "$REF"; do
  if target="$("${AS_APP[@]}" git rev-parse --verify --quiet "$candidate^{commit}")"; then
    break
  fi
done
[ -n "$target" ] || die "no branch, tag or commit called $REF at origin"
if [ "$target" = "$previous" ]; then
  say "Already at $REF ($target); nothing to do"
  exit 0
fi

say "Deploying $REF ($target), replacing $previous"
# Since gunicorn's socket is for the app's group only, nginx must be in it (install.sh sees
# to it on new hosts; a host set up before learns it here).
if let_nginx_connect; then
  run systemctl reload nginx
fi
if deploy "$target"; then
  say "Done: $("${AS_APP[@]}" git log -1 --format="%h %s")"
  exit 0
fi

warn "the new version failed; rolling back to $previous"
if deploy "$previous"; then
  die "rolled back to $previous; the site runs the previous version (see /var/log/imagemonkey/gunicorn.log)"
fi
die "the rollback failed too: the site needs attention (supervisorctl status; /var/log/imagemonkey/gunicorn.log)"
