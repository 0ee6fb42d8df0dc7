#!/usr/bin/env bash
### Usage: run_embodiment_simple_cnn.sh [--dry-run] TASK_ID_OR_RANGE [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### Simple CNN baseline: the whole CNN keeps training task after task (each task starts from the previous model.pt).
### TASK_ID_OR_RANGE: k, or "a,b" (tasks a..b). CHECKPOINT_PATH: a model.pt (or best_checkpoint.pt) for the first task.
### Defaults: CONFIG_NAME=crl_experiment/libero_spatial_grpo_simple_cnn SEED=1234.
### Logs: logs_cnn/simple_cnn/task_<k>_seed<S>/checkpoints/global_step_<G>/actor/model.pt
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
tasks=$(task_range "${1:-0}") || exit 2
ckpt=${2:-}
[ -z "$ckpt" ] || [[ "$ckpt" == *.pt ]] || die "CHECKPOINT_PATH must be a .pt file (the Simple CNN saves model.pt), got \"$ckpt\""
config=${4:-crl_experiment/libero_spatial_grpo_simple_cnn} seed=${5:-1234}; require_seed "$seed"
sequence_cmd simple_cnn simple_cnn "$tasks" "" "${3:-}" "$config" "$seed" "${@:6}"
[ -n "$ckpt" ] && CMD+=("actor.checkpoint_load_path=$ckpt")
run_cmd "${CMD[@]}"
