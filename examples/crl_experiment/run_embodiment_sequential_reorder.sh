#!/usr/bin/env bash
### Usage: run_embodiment_sequential_reorder.sh [--dry-run] TASK_IDS [RUN_ID=seq_<ids>] [MAX_EPOCH] [CONFIG_NAME] [SEED] [INIT_CHECKPOINT] [overrides...]
### Sequential fine-tuning over the tasks in the given order ("3,1,2" trains 3, then 1, then 2).
### Logs: logs_<tag>/sequential_reorder/<RUN_ID>_seed<S>/task_<k>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
[ -n "${1:-}" ] || die "TASK_IDS is required, e.g. \"3,1,2\""
TASKS=$(task_list_ordered "$1") || exit 2
RUN_ID=${2:-seq_$(echo "$TASKS" | tr -d '[]' | tr ',' '_')}
CONFIG=${4:-$DEFAULT_CONFIG}; SEED=${5:-1234}; require_seed "$SEED"
sequence_cmd seq_ft_reorder "sequential_reorder/${RUN_ID}_seed${SEED}" "$TASKS" "${6:-}" "${3:-}" "$CONFIG" "$SEED" \
    "crl.order=$TASKS" "crl.stage_dir='task_{tasks}'" "${@:7}"
run_cmd "${CMD[@]}"
