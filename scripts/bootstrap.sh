#!/usr/bin/env bash
# Makes this checkout runnable, idempotently: the Python venv with the project's pins, then the Pulumi engine.
# Safe to re-run; each step is skipped when already done.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# Debian packages some targets need, installed only when missing (apt is not touched when all are present):
# graphviz for `make graph`, PostgreSQL's server binaries for the team-state test (it starts its own server).
debian_missing=()
command -v dot >/dev/null 2>&1 || debian_missing+=(graphviz)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || debian_missing+=(postgresql)
if [ ${#debian_missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${debian_missing[*]}: install them with the system's package manager and re-run"
  [ "$(id -u)" -eq 0 ] \
    || die "missing Debian packages: run 'sudo apt-get update && sudo apt-get install -y ${debian_missing[*]}' and re-run"
  say "installing Debian packages: ${debian_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: the Debian package mirror must be reachable"
  apt-get install -y -qq "${debian_missing[@]}" >/dev/null || die "apt-get install ${debian_missing[*]} failed (see above)"
fi

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || die "Python 3.11 is required (python3.11 or python3 on PATH); install it and re-run"

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  say "creating .venv with $($python --version)"
  rm -rf .venv
  "$python" -m venv .venv || die "cannot create a venv: install the python3-venv package and re-run"
fi

# Reinstall only when the pins changed.
stamp=".venv/.pyproject-$( (cat pyproject.toml; echo 2) | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "installing the project and its pinned dependencies into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip \
    || die "pip could not reach the package index"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" \
    || die "pip install failed (see above); PyPI must be reachable"
  rm -f .venv/.pyproject-*
  touch "$stamp"
fi

engine/build.sh "$root/.venv/bin"
