#!/usr/bin/env bash
# Write the lock files from the top-level pins in pyproject.toml: every package that
# gets installed, transitive ones included, with the sha256 of each of its files.
#   requirements.lock      [project].dependencies            (make run, deploy/)
#   requirements-dev.lock  the same plus the `dev` extra       (make test), at the same
#                          versions, since it is resolved within requirements.lock
#   requirements-demo.lock the site plus the `demo` extra      (make demo), at the dev
#                          lock's versions
# tools/bootstrap.sh installs one of them with `pip --require-hashes`. Run this (`make lock`)
# after changing a pin in pyproject.toml, and commit the lock files with it. It uses uv
# (set UV=/path/to/uv, or it is installed into a throwaway folder from the package index).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
UV_VERSION=0.13.9
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

uv="${UV:-}"
if [ -z "$uv" ]; then
  tools="$(mktemp -d)"
  trap 'rm -rf "$tools"' EXIT
  "$PY" -m venv "$tools/venv"
  "$tools/venv/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>&1 \
    | grep -v "^WARNING: Location" || true
  uv="$tools/venv/bin/uv"
fi
# Python 3.11 as a whole (3.11.0 and up: Debian 12 has 3.11.2), so that packages needed
# only by early 3.11 releases are in the lock too.
compile=("$uv" pip compile pyproject.toml --quiet --python-version 3.11 --generate-hashes
  --custom-compile-command "tools/lock.sh")
"${compile[@]}" -o requirements.lock
"${compile[@]}" --extra dev -c requirements.lock -o requirements-dev.lock
"${compile[@]}" --extra demo -c requirements-dev.lock -o requirements-demo.lock
echo "==> requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) packages, requirements-dev.lock: $(grep -c '^[a-z0-9]' requirements-dev.lock), requirements-demo.lock: $(grep -c '^[a-z0-9]' requirements-demo.lock)"
