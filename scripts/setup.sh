#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the pinned working set from pyproject.toml; then
# .venv-gateway with Python 3.11 for the gateway alone (requirements-gateway.txt says why), or,
# without a Python 3.11, says the gateway will run on .venv.
# Idempotent: re-installs only when pyproject.toml or requirements-gateway.txt changed since the
# last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # minor version, e.g. 3.10: on PATH, else under pyenv
  local want=$1 root candidate
  if command -v "python$want" >/dev/null 2>&1 \
      && "python$want" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$want'" 2>/dev/null; then
    command -v "python$want"; return 0
  fi
  root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  for candidate in "$root"/versions/"$want".*/bin/python"$want"; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

setup_gateway_venv() {
  local stamp py
  stamp=".venv-gateway/.installed-$(sha256sum requirements-gateway.txt | cut -c1-16)"
  if [ -f "$stamp" ]; then return 0; fi
  if ! py="$(find_python 3.11)"; then
    echo "==> Python 3.11 not found: the gateway will run on .venv's Python 3.10 (more CPU per"
    echo "    message; requirements-gateway.txt). 'pyenv install 3.11' and re-run to change that."
    return 0
  fi
  # Made afresh whenever its pins change, so it holds exactly them (a test checks).
  rm -rf .venv-gateway
  echo "==> creating .venv-gateway (the gateway's own interpreter) with $py"
  "$py" -m venv .venv-gateway
  echo "==> installing the gateway's pinned dependencies"
  .venv-gateway/bin/python -m pip install --quiet --upgrade "pip==25.3" 2>&1 | grep -v "^WARNING: Location" || true
  .venv-gateway/bin/python -m pip install --quiet -r requirements-gateway.txt 2>&1 | grep -v "^WARNING: Location" || true
  .venv-gateway/bin/python -c "import socketio, engineio, uvicorn, wsproto, sqlalchemy, opencc, jwt, yaml, redis, psycopg2, requests, tqdm, uvloop, httptools" \
    || { echo "ERROR: the gateway's dependency install failed; see output above." >&2; exit 1; }
  rm -f .venv-gateway/.installed-*
  touch "$stamp"
  echo "==> .venv-gateway ready"
}

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$stamp" ]; then setup_gateway_venv; exit 0; fi

if [ ! -x .venv/bin/python ]; then
  if ! py="$(find_python 3.10)"; then
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
setup_gateway_venv
