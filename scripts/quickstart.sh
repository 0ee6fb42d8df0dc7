#!/usr/bin/env bash
# README command 1: set everything up (idempotent) and run the main job on the embedded CPU default.
# Today: a short LIBERO-Spatial rollout of a scripted policy on the real simulator, writing a video
# and the episode statistics under runs/quickstart/. Extra arguments go to vlacrl-rollout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$VLACRL_PY" -m vlacrl.cli.rollout --out runs/quickstart "$@"
