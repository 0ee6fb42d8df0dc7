#!/usr/bin/env bash
# README command 2: set everything up (idempotent) and run the test suite.
#   bash scripts/test.sh              # the CI suite (everything but tests marked slow or multinode)
#   bash scripts/test.sh -m slow      # only the slow tests; any other pytest arguments pass through
#   bash scripts/test.sh -m multinode # the tests on a several-node Ray cluster (docs/reproducing.md)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
export MUJOCO_GL="${MUJOCO_GL:-osmesa}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
if [ "$#" -eq 0 ]; then set -- -m "not slow and not multinode" --durations=25; fi
exec "$VLACRL_PY" -m pytest "$@"
