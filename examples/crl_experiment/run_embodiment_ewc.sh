#!/usr/bin/env bash
### Usage: run_embodiment_ewc.sh [--dry-run] TASK_ID_OR_RANGE [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### EWC on the LoRA parameters (lambda = crl.ewc_lambda, default 1e6); the Fisher of each task is written
### to its run dir (ewc_data.pt) and accumulated online. Arguments as run_embodiment_sequential.sh.
### As the reference: when the range starts at the suite's first task, no CHECKPOINT_PATH is given, no sequence
### has been recorded under the log root and logs_<tag>/ewc/task_<first>_seed<S>/checkpoints/global_step_<G>/actor
### exists, that adapter trains one step only to write its Fisher (task_<first>_from_existing_seed<S>/), then the
### rest of the range continues from it.
### Logs: logs_<tag>/ewc/task_<k>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
TASKS=$(task_range "${1:-0}") || exit 2
CONFIG=${4:-$DEFAULT_CONFIG}; SEED=${5:-1234}; require_seed "$SEED"
FIRST=$(get_first_task_id "$CONFIG"); ROOT="$VLACRL_ROOT/$(log_root ewc "$CONFIG" | sed 's#^\./##')"
EXISTING="$ROOT/task_${FIRST}_seed${SEED}/checkpoints/global_step_$(get_default_global_step "$CONFIG")/actor"
IDS=($(echo "$TASKS" | tr -d '[]' | tr ',' ' '))
if [ -n "${2:-}" ] || [ "${IDS[0]}" != "$FIRST" ] || [ ! -d "$EXISTING" ] || [ -f "$ROOT/sequence_state_seed${SEED}.json" ]; then
    sequence_launcher ewc ewc "$@"
    exit $?
fi
echo "task $FIRST's adapter exists ($EXISTING): one step from it only to write its Fisher, as the reference"
sequence_cmd ewc ewc "[$FIRST]" "$EXISTING" 1 "$CONFIG" "$SEED" "crl.stage_dir='task_{tasks}_from_existing_seed{seed}'" "${@:6}"
run_cmd "${CMD[@]}" || exit $?
[ "${#IDS[@]}" -gt 1 ] || exit 0
REST=$(IFS=,; echo "[${IDS[*]:1}]")
sequence_cmd ewc ewc "$REST" "" "${3:-}" "$CONFIG" "$SEED" "${@:6}"
run_cmd "${CMD[@]}"
