#!/usr/bin/env bash
### Usage: run_embodiment_der.sh [--dry-run] TASK_ID_OR_RANGE [DER_COEFF=0.03] [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### Dark experience replay: ER plus MSE to the cached base-model logits (build them with compute_base_logits_embodiment.sh).
### The replay data dir is crl.dataset_dir (see docs/methods/der.md).
### Logs: logs_<tag>/der/task_<k>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
TASKS=$(task_range "${1:-0}") || exit 2
COEFF=${2:-0.03}; [[ "$COEFF" =~ ^[0-9.eE+-]+$ ]] || die "DER_COEFF must be a number, got \"$COEFF\""
CONFIG=${5:-$DEFAULT_CONFIG}; SEED=${6:-1234}; require_seed "$SEED"
sequence_cmd der der "$TASKS" "${3:-}" "${4:-}" "$CONFIG" "$SEED" "crl.bc_coeff=$COEFF" "${@:7}"
run_cmd "${CMD[@]}"
