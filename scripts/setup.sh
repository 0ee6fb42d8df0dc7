#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh machine (sourced by quickstart.sh and test.sh):
#   1. OSMesa (software OpenGL for MuJoCo) via apt when missing and running as root;
#   2. a virtualenv (default .venv, or $VLACRL_VENV) with requirements.txt and vlacrl (editable);
#   3. LIBERO's config.yaml in LIBERO/ and the asset link LIBERO's scene code needs.
# Re-running it does nothing that is already done (pip runs again only when the requirements change).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLACRL_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
log() { printf '[vlacrl setup] %s\n' "$*" >&2; }

# 1. OSMesa
if ! ldconfig -p 2>/dev/null | grep -q 'libOSMesa\.so'; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    log "installing libosmesa6 (software rendering for MuJoCo) with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null
  else
    log "WARNING: libOSMesa is missing and this is not a root shell with apt-get."
    log "         CPU rendering needs it: ask an admin for 'apt-get install libosmesa6'"
    log "         (or use EGL on an NVIDIA GPU). 'vlacrl-doctor' shows what works."
  fi
fi

# 2. virtualenv + packages
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP="$VENV/.vlacrl-setup-stamp"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! "$VENV/bin/python" -c 'import vlacrl' 2>/dev/null; then
  log "installing requirements into $VENV (first run: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT"  # no build-backend notices
  echo "$WANT" > "$STAMP"
fi

# 3. LIBERO config + assets
"$VENV/bin/vlacrl-setup-libero" >&2
export VLACRL_PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
