#!/usr/bin/env bash
### Usage: run_embodiment_multitask.sh [--dry-run] TASK_IDS ("0,2,4" or "0 2 4") [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### Multitask oracle: all listed tasks in one training stage (init states pooled), then one evaluation.
### Logs: logs_<tag>/multitask/tasks_<sorted ids joined by _>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
[ -n "${1:-}" ] || die "TASK_IDS is required, e.g. \"0,2,4\""
TASKS=$(task_list_sorted "$1") || exit 2
CONFIG=${4:-$DEFAULT_CONFIG}; SEED=${5:-1234}; require_seed "$SEED"
sequence_cmd multitask multitask "$TASKS" "${2:-}" "${3:-}" "$CONFIG" "$SEED" "crl.stage_dir='tasks_{tasks}_seed{seed}'" "${@:6}"
run_cmd "${CMD[@]}"
