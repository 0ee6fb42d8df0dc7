#!/usr/bin/env bash
# README command 1: set everything up (idempotent), then run the main job on the embedded CPU default —
# a continual-learning experiment: Seq. FT with GRPO over LIBERO-Spatial tasks 0, 1, 2 (task 3 held out)
# with the tiny OpenVLA-OFT (real architecture, random weights) on real Ray + FSDP2 (gloo) + LIBERO (OSMesa):
# the base model is evaluated, then each task is trained for 2 global steps and all 4 tasks are evaluated;
# finally vlacrl-metrics writes the paper's metrics, tables and plots.
# Extra arguments are Hydra overrides for vlacrl-crl, e.g. `crl=ewc` (another method) or runner.max_epochs=3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
RUN_DIR="runs/quickstart/$(date +%Y%m%d-%H%M%S)"
echo "[quickstart] continual experiment -> $RUN_DIR"
"$VLACRL_PY" -m vlacrl.cli.crl "runner.logger.log_path=$RUN_DIR" "crl.tasks=[0,1,2]" "crl.eval_tasks=[0,1,2,3]" \
    crl.eval_base=True env.eval.num_envs=4 runner.max_epochs=2 runner.save_interval=2 "$@"
METHOD=seq_ft
for arg in "$@"; do [[ "$arg" == crl=* ]] && METHOD="${arg#crl=}"; done
echo "[quickstart] metrics"
"$VLACRL_PY" -m vlacrl.cli.metrics "$RUN_DIR" --label "$METHOD" --out "$RUN_DIR/metrics"
cat <<MSG
[quickstart] done.
  success matrix : $RUN_DIR/success_matrix_seed1234.csv
  metrics        : $RUN_DIR/metrics/metrics.md (+ metrics.csv, *.png plots)
  checkpoints    : $RUN_DIR/task_<k>_seed1234/checkpoints/
  videos         : $RUN_DIR/task_<k>_seed1234/eval/video/ (and .../video/ of the training runs)
  TensorBoard    : .venv/bin/tensorboard --logdir $RUN_DIR
MSG
