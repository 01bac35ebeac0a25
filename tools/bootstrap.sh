#!/usr/bin/env bash
# Create .venv and install the pinned dependencies from pyproject.toml when
# they changed since the last run. `tools/bootstrap.sh dev` adds the dev
# extra and, for browser tests, Debian's Chromium.
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

stamp=".venv/.installed-${extra:-runtime}"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "Installing Python dependencies${extra:+ (with $extra)}"
  reqs="$(.venv/bin/python - "$extra" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(project["dependencies"])
if sys.argv[1]:
    deps += project["optional-dependencies"][sys.argv[1]]
print("\n".join(deps))
PY
)"
  printf '%s\n' "$reqs" > .venv/requirements.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check -r .venv/requirements.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import django" || { echo "error: dependency installation failed" >&2; exit 1; }
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
