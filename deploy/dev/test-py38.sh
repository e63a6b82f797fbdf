#!/usr/bin/env bash
# Runs the agent and wire-format tests under Python 3.8, the oldest the agent supports
# (Windows 7 lab PCs). No Python 3.8 is a failure, not a pass: set SCHOOLMON_SKIP_PY38=1
# to skip on purpose (vermin in `make lint` still checks the syntax then).
set -euo pipefail
if [ "${SCHOOLMON_SKIP_PY38:-}" = "1" ]; then
  echo "py38: SKIPPED on request (SCHOOLMON_SKIP_PY38=1): the agent was NOT tested on 3.8" >&2
  exit 0
fi
is38() { [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; }
py=""
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
# A python3.8 on PATH; pyenv's installed 3.8 (its shim exists even when 3.8 is not the
# selected version, and then fails: ask pyenv for the real interpreter); /root's pyenv
# when HOME is elsewhere (CI as root with another HOME).
candidates=("$(command -v python3.8 || true)")
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.8(\.|$)' || true); do
    candidates+=("$(PYENV_VERSION=$v pyenv which python3.8 2>/dev/null || true)")
  done
fi
for root in "$pyenv_root" /root/.pyenv /opt/pyenv; do
  for p in "$root"/versions/3.8*/bin/python3.8; do candidates+=("$p"); done
done
candidates+=(/usr/bin/python3.8 /usr/local/bin/python3.8)
for candidate in "${candidates[@]}"; do
  if is38 "$candidate"; then py=$candidate; break; fi
done
if [ -z "$py" ]; then
  cat >&2 <<'MSG'
py38: FAILED: no Python 3.8 found, so the agent's tests cannot run on the oldest Python it
supports. Install one (e.g. `pyenv install 3.8`, or `apt-get install python3.8` where the
distribution has it), or set SCHOOLMON_SKIP_PY38=1 to skip on purpose.
MSG
  exit 1
fi
echo "py38: running the agent and wire-format tests under $("$py" --version 2>&1) ($py)"
if [ ! -x .venv38/bin/python ] || [ pyproject.toml -nt .venv38/.installed ]; then
  rm -rf .venv38 && "$py" -m venv .venv38
  .venv38/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv38/bin/pip install -q -e '.[agent]' 'pytest>=7' pytest-timeout
  touch .venv38/.installed
fi
.venv38/bin/python -m pytest -q -p no:cacheprovider tests/agent tests/protocol
