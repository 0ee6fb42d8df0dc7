#!/usr/bin/env bash
### Usage: run_embodiment_weight_merge.sh [--dry-run] [TASK_ID_OR_RANGE=first task] [MERGE_COEFF=0.5] [CONFIG_NAME] [SEED] [overrides...]
### Weight merge: earlier adapters are folded into the base with coefficient c (W <- W + c*dW each), a new
### adapter trains each task; evaluation uses lora_scale c. MERGE_COEFF must be in [0, 1].
### Logs: logs_<tag>/weight_merge/task_<k>_coeff_<c with . -> _>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
CONFIG=${3:-$DEFAULT_CONFIG}; SEED=${4:-1234}; require_seed "$SEED"
TASKS=$(task_range "${1:-$(get_first_task_id "$CONFIG")}") || exit 2
COEFF=${2:-0.5}
awk -v c="$COEFF" 'BEGIN { exit !(c ~ /^[0-9.]+$/ && c >= 0 && c <= 1) }' || die "MERGE_COEFF must be in [0, 1], got \"$COEFF\""
sequence_cmd weight_merge weight_merge "$TASKS" "" "" "$CONFIG" "$SEED" "crl.merge_coefficient=$COEFF" \
    "crl.stage_dir='task_{tasks}_coeff_${COEFF//./_}_seed{seed}'" "${@:5}"
run_cmd "${CMD[@]}"
