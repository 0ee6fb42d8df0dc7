#!/usr/bin/env bash
### Usage: run_embodiment_er.sh [--dry-run] TASK_ID_OR_RANGE [ER_COEFF=0.03] [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### Experience replay: behaviour-cloning cross-entropy on 1 demo per task, one replay batch per RL micro-batch.
### The replay data dir is crl.dataset_dir (see docs/methods/er.md).
### Logs: logs_<tag>/er/task_<k>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
TASKS=$(task_range "${1:-0}") || exit 2
COEFF=${2:-0.03}; [[ "$COEFF" =~ ^[0-9.eE+-]+$ ]] || die "ER_COEFF must be a number, got \"$COEFF\""
CONFIG=${5:-$DEFAULT_CONFIG}; SEED=${6:-1234}; require_seed "$SEED"
sequence_cmd er er "$TASKS" "${3:-}" "${4:-}" "$CONFIG" "$SEED" "crl.bc_coeff=$COEFF" "${@:7}"
run_cmd "${CMD[@]}"
