#!/usr/bin/env bash
# README command 1: set everything up (idempotent), then run the main job on the embedded CPU default.
#   Part 1, the probe world (learning you can see, docs/probe.md): a continual-learning experiment, Seq. FT with
#     GRPO over probe tasks 0, 1, 2 (task 3 held out) on real Ray + FSDP2 (gloo) + peft LoRA, starting from the
#     SFT base (the tiny OpenVLA-OFT fine-tuned on the probe expert's demos, made on first use); the base model is
#     evaluated, each task trained for 8 global steps, all 4 tasks evaluated after each; the success matrix moves.
#   Part 2: vlacrl-metrics writes the paper's metrics, tables, heatmaps and learning curves.
#   Part 3, real LIBERO (robosuite/MuJoCo, OSMesa): the tiny random model evaluated on LIBERO-Spatial task 0 with
#     videos. It has never been trained on LIBERO, so its success there is 0: this part shows the simulator
#     stack, not learning (docs/libero.md).
# Extra arguments are Hydra overrides for part 1, e.g. `crl=ewc` (another method) or runner.max_epochs=4.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
RUN_DIR="runs/quickstart/$(date +%Y%m%d-%H%M%S)"
METHOD=seq_ft
for arg in "$@"; do [[ "$arg" == crl=* ]] && METHOD="${arg#crl=}"; done

echo "[quickstart 1/3] probe world: $METHOD with GRPO over tasks 0, 1, 2 -> $RUN_DIR/probe"
"$VLACRL_PY" -m vlacrl.cli.crl --config-name cpu_probe "runner.logger.log_path=$RUN_DIR/probe" \
    "crl.tasks=[0,1,2]" "crl.eval_tasks=[0,1,2,3]" crl.eval_base=True "$@"

echo "[quickstart 2/3] metrics and learning curves -> $RUN_DIR/probe/metrics"
"$VLACRL_PY" -m vlacrl.cli.metrics "$RUN_DIR/probe" --label "$METHOD" --out "$RUN_DIR/probe/metrics"

echo "[quickstart 3/3] LIBERO: the tiny random model on LIBERO-Spatial task 0 (videos) -> $RUN_DIR/libero"
"$VLACRL_PY" -m vlacrl.cli.eval "runner.logger.log_path=$RUN_DIR/libero" "env.fixed_task_ids=[0]" \
    env.eval.num_envs=2 env.eval.max_episode_steps=32 env.eval.video_cfg.save_video=True

cat <<MSG
[quickstart] done.
  Part 1-2, probe world (learning: success rises on each trained task, earlier tasks may be forgotten):
    success matrix : $RUN_DIR/probe/success_matrix_seed1234.csv  (rows: base, stage_0..2; columns: tasks 0-3)
    metrics        : $RUN_DIR/probe/metrics/metrics.md (+ metrics.csv, heatmap, task curves)
    learning curves: $RUN_DIR/probe/metrics/learning_curves_${METHOD}_seed1234.png
    videos         : $RUN_DIR/probe/task_<k>_seed1234/eval/video/ (and .../video/train/)
  Part 3, real LIBERO (simulator stack only: the tiny model is untrained there, success 0):
    videos         : $RUN_DIR/libero/evals/*/video/
  TensorBoard      : .venv/bin/tensorboard --logdir $RUN_DIR
MSG
