#!/usr/bin/env bash
# Forgetting on a 5-task probe sequence (tasks 0-4, task 5 held out), one CRL method, several seeds, then the
# paper's metrics (benchmarks/RESULTS.md, docs/probe.md):
#   bash benchmarks/probe_forgetting.sh seq_ft 1234 1235 1236        # method, then seeds
#   bash benchmarks/probe_forgetting.sh er 1234 1235 1236 -- crl.dataset_dir=datasets/probe_replay \
#       crl.replay_tasks=seen crl.demos_per_task=null      # extra overrides (8 demos per task: docs/probe.md)
#   LABEL=slca_slow bash benchmarks/probe_forgetting.sh slca 1234 -- crl.llm_lora_lr=5e-4   # a variant's own name
# Each seed: vlacrl-crl --config-name cpu_probe, base row + 5 stages of 8 GRPO steps, 6 tasks evaluated with
# 8 episodes each after every stage (about 10 minutes on a 2-core CPU). Runs go to runs/forgetting/<method>_seed<S>.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${VLACRL_PY:-$ROOT/.venv/bin/python}"
METHOD="$1"; shift
SEEDS=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do SEEDS+=("$1"); shift; done
[ "$#" -gt 0 ] && shift  # the rest are Hydra overrides for every seed
cd "$ROOT"
LABEL="${LABEL:-$METHOD}"  # names the run dirs and the metrics: runs/forgetting/<LABEL>_seed<S>
DIRS=()
for SEED in "${SEEDS[@]}"; do
  DIR="runs/forgetting/${LABEL}_seed${SEED}"
  "$PY" -m vlacrl.cli.crl --config-name cpu_probe "crl=$METHOD" "crl.tasks=[0,1,2,3,4]" \
      "crl.eval_tasks=[0,1,2,3,4,5]" crl.eval_base=True env.eval.num_envs=48 "crl.seed=$SEED" "actor.seed=$SEED" \
      "env.train.seed=$SEED" "runner.logger.log_path=$DIR" env.train.video_cfg.save_video=False \
      env.eval.video_cfg.save_video=False "$@"
  DIRS+=("$DIR")
done
"$PY" -m vlacrl.cli.metrics "${DIRS[@]}" --label $(for _ in "${DIRS[@]}"; do printf '%s ' "$LABEL"; done) \
    --out "runs/forgetting/metrics_${LABEL}"
