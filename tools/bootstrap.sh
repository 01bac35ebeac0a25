#!/usr/bin/env bash
# Create .venv and install the locked dependencies when the lock changed since
# the last run: requirements.lock, or with `tools/bootstrap.sh dev`
# requirements-dev.lock (the dev extra too) and, for browser tests, Debian's
# Chromium; with `tools/bootstrap.sh demo` requirements-demo.lock (the site and
# scikit-image, whose sample photos `make demo` loads). Every package is pinned there with its hashes (tools/lock.sh writes
# them from pyproject.toml), and pip refuses any file whose hash is not listed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
extra="${1:-}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
say() { printf '==> %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  say "Creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

case "$extra" in
  "") lock=requirements.lock ;;
  dev) lock=requirements-dev.lock ;;
  demo) lock=requirements-demo.lock ;;
  *) echo "usage: tools/bootstrap.sh [dev|demo]" >&2; exit 2 ;;
esac
stamp=".venv/.installed-${extra:-runtime}"
locks=("$lock")
# The tests also run the original ImageMonkey's client, unchanged and without the
# tensorflow it declares (requirements-client.lock says why).
[ "$extra" = dev ] && locks+=(requirements-client.lock)
want="$(cat "${locks[@]}" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "Installing Python dependencies from ${locks[*]}"
  for each in "${locks[@]}"; do
    flags=(--require-hashes)
    [ "$each" = requirements-client.lock ] && flags+=(--no-deps)
    status=0
    .venv/bin/python -m pip install -q --disable-pip-version-check "${flags[@]}" -r "$each" \
      2>&1 | grep -v -e "^WARNING: Location" -e "pyimagemonkey 0.1 requires tensorflow" \
      -e "^ERROR: pip's dependency resolver does not currently" || status="${PIPESTATUS[0]}"
    [ "$status" = 0 ] || { echo "error: installing $each failed" >&2; exit 1; }
  done
  echo "$want" > "$stamp"
fi

if [ "$extra" = dev ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing Debian's Chromium for the browser tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "note: chromium is missing; install it with 'sudo apt-get install chromium' to run browser tests" >&2
  fi
fi
