#!/usr/bin/env bash
# Runs the agent and wire-format tests under Python 3.8, the oldest the agent supports.
set -euo pipefail
py=""
# pyenv's shim exists even when 3.8 is not selected: try the real interpreters too.
for candidate in "$(command -v python3.8 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8*/bin/python3.8; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] &&
     "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; then
    py=$candidate; break
  fi
done
if [ -z "$py" ]; then
  echo "py38: no python3.8 on this machine; vermin checked the syntax instead"; exit 0
fi
echo "py38: running the agent and wire-format tests under $("$py" --version)"
if [ ! -x .venv38/bin/python ] || [ pyproject.toml -nt .venv38/.installed ]; then
  rm -rf .venv38 && "$py" -m venv .venv38
  .venv38/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv38/bin/pip install -q -e '.[agent]' 'pytest>=7' pytest-timeout
  touch .venv38/.installed
fi
.venv38/bin/python -m pytest -q -p no:cacheprovider tests/agent tests/protocol
