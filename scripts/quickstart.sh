#!/usr/bin/env bash
# README command 1: set everything up (idempotent), then run the main job on the embedded CPU default:
# GRPO on LIBERO-Spatial task 0 with the tiny OpenVLA-OFT (real architecture, random weights) on real
# Ray + FSDP2 (gloo) + LIBERO (OSMesa) for 2 global steps, then an evaluation of the trained adapter.
# Extra arguments are Hydra overrides for vlacrl-train (e.g. runner.max_epochs=3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
RUN_DIR="runs/quickstart/$(date +%Y%m%d-%H%M%S)"
echo "[quickstart] training -> $RUN_DIR"
"$VLACRL_PY" -m vlacrl.cli.train "runner.logger.log_path=$RUN_DIR" "$@"
CKPT="$(ls -d "$RUN_DIR"/checkpoints/global_step_* | sort -V | tail -n 1)"
echo "[quickstart] evaluating $CKPT"
"$VLACRL_PY" -m vlacrl.cli.eval "runner.logger.log_path=$RUN_DIR" "+actor.model.lora_path=$CKPT/actor"
cat <<MSG
[quickstart] done.
  checkpoints : $RUN_DIR/checkpoints/
  metrics     : $RUN_DIR/evals/*/eval_metrics.json
  videos      : $RUN_DIR/video/
  TensorBoard : .venv/bin/tensorboard --logdir $RUN_DIR
MSG
