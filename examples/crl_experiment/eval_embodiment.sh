#!/usr/bin/env bash
### Usage: eval_embodiment.sh [--dry-run] CHECKPOINT_LOCATION|base [STEP=10] [CONFIG_NAME=crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial] [overrides...]
### Evaluates <CHECKPOINT_LOCATION>/checkpoints/global_step_<STEP>/actor (a run dir written by a launcher),
### or the base SFT model with "base", on every task of the suite (vlacrl-eval).
### Logs: logs_<tag>/evals/<run name>_step_<STEP>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
[ -n "${1:-}" ] || die "CHECKPOINT_LOCATION is required (a run dir, or base)"
STEP=${2:-10}; [[ "$STEP" =~ ^[0-9]+$ ]] || die "STEP must be an integer, got \"$STEP\""
CONFIG=${3:-crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial}
ROOT=$(log_root evals "$CONFIG")
CMD=("$(vlacrl_cmd vlacrl-eval)" --config-name "$CONFIG")
if [ "$1" = "base" ]; then
    CMD+=("actor.model.is_lora=False" "runner.logger.log_path=$ROOT/base")
else
    ADAPTER="$(cd "$VLACRL_ROOT" && realpath -m "$1")/checkpoints/global_step_${STEP}/actor"
    CMD+=("+actor.model.lora_path=$ADAPTER" "runner.logger.log_path=$ROOT/$(basename "$1")_step_${STEP}")
fi
run_cmd "${CMD[@]}" "${@:4}"
