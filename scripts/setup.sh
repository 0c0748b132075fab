#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the pinned working set from pyproject.toml.
# Idempotent: re-installs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
  if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    command -v python3.10; return 0
  fi
  local root
  root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  for candidate in "$root"/versions/3.10.*/bin/python3.10; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

if [ ! -x .venv/bin/python ]; then
  if ! py="$(find_python310)"; then
    echo "ERROR: Python 3.10 not found (Rasa 3.6.21 supports no newer)." >&2
    echo "       Install it (e.g. 'pyenv install 3.10') or put python3.10 on PATH, then re-run." >&2
    exit 1
  fi
  echo "==> creating .venv with $py"
  "$py" -m venv .venv
fi
echo "==> installing pinned dependencies (first run takes a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade "pip==25.3" "setuptools==70.3.0" wheel 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import rasa, socketio, spacy, jieba, opencc, cn2an, sqlalchemy" \
  || { echo "ERROR: dependency install failed; see output above." >&2; exit 1; }
rm -f .venv/.installed-*
touch "$stamp"
echo "==> .venv ready"
