#!/usr/bin/env bash
### Usage: eval_embodiment_lora_scale.sh [--dry-run] CHECKPOINT_LOCATION CURRENT_LORA_SCALE [STEP=10] [CONFIG_NAME=crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial] [overrides...]
### Evaluates an adapter with every LoRA layer's scaling multiplied by CURRENT_LORA_SCALE in [0, 1]
### (0 = base model, 1 = unchanged). For weight-merge runs add the earlier adapters as overrides:
###   +actor.model.lora_paths=[...] +actor.model.previous_lora_merge_coefficient=c
### Logs: logs_<tag>/evals/<run name>_step_<STEP>_lora_scale_<s>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
[ -n "${1:-}" ] && [ -n "${2:-}" ] || die "CHECKPOINT_LOCATION and CURRENT_LORA_SCALE are required"
SCALE=$2
awk -v c="$SCALE" 'BEGIN { exit !(c ~ /^[0-9.]+$/ && c >= 0 && c <= 1) }' || die "CURRENT_LORA_SCALE must be in [0, 1], got \"$SCALE\""
STEP=${3:-10}; [[ "$STEP" =~ ^[0-9]+$ ]] || die "STEP must be an integer, got \"$STEP\""
CONFIG=${4:-crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial}
ROOT=$(inject_config_tag_into_log_path "./logs/evals" "$(extract_config_tag "$CONFIG")")
ADAPTER="$(cd "$VLACRL_ROOT" && realpath -m "$1")/checkpoints/global_step_${STEP}/actor"
run_cmd "$(vlacrl_cmd vlacrl-eval)" --config-name "$CONFIG" "+actor.model.lora_path=$ADAPTER" \
    "++actor.model.lora_scale=$SCALE" "runner.logger.log_path=$ROOT/$(basename "$1")_step_${STEP}_lora_scale_${SCALE//./_}" "${@:5}"
