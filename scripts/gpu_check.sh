#!/usr/bin/env bash
# One GPU check (benchmarks/gpu_check.py): run what this machine can of vlacrl's GPU path, one JSON report.
#   bash scripts/gpu_check.sh --dry-run          # print each check and its command, or why it is skipped
#   bash scripts/gpu_check.sh [--out DIR]        # run them (default report: runs/gpu_check/gpu_check.json)
# Uses the checkout's .venv when there is one, else python3 (a bare GPU box with torch, transformers, peft, timm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${VLACRL_PY:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi
cd "$ROOT"
exec env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$ROOT/benchmarks/gpu_check.py" "$@"
