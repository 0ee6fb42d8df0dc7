#!/usr/bin/env bash
# The single-task reference S^single_j that FWT needs (benchmarks/RESULTS.md, docs/probe.md): each of the 5-task
# probe sequence's tasks trained alone from the base model, as one stage of benchmarks/probe_forgetting.sh is,
# and evaluated on itself right after:
#   bash benchmarks/probe_single_task.sh 1234 1235 1236          # seeds; tasks 0-4 by default
#   TASKS="1 2" bash benchmarks/probe_single_task.sh 1234
# Runs go to runs/forgetting/single_task<j>_seed<S>; then
#   vlacrl-metrics runs/forgetting/seq_ft_seed* --single-task-ref runs/forgetting/single_task* ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${VLACRL_PY:-$ROOT/.venv/bin/python}"
cd "$ROOT"
for SEED in "$@"; do
  for TASK in ${TASKS:-0 1 2 3 4}; do
    "$PY" -m vlacrl.cli.crl --config-name cpu_probe crl=seq_ft "crl.tasks=[$TASK]" "crl.eval_tasks=[$TASK]" \
        crl.eval_base=False env.eval.num_envs=8 "crl.seed=$SEED" "actor.seed=$SEED" "env.train.seed=$SEED" \
        "runner.logger.log_path=runs/forgetting/single_task${TASK}_seed${SEED}" \
        env.train.video_cfg.save_video=False env.eval.video_cfg.save_video=False
  done
done
