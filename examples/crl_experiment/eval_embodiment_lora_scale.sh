#!/usr/bin/env bash
### Usage: eval_embodiment_lora_scale.sh [--dry-run] CHECKPOINT_LOCATION [CURRENT_LORA_SCALE] [PREVIOUS_LORA_COEFF] [STEP=10] [CONFIG_NAME=crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial] [overrides...]
### Evaluates an adapter with every LoRA layer's scaling multiplied by CURRENT_LORA_SCALE in [0, 1] (0 = base model).
### Single adapter (e.g. logs_spatial/sequential/task_0_seed1234): CURRENT_LORA_SCALE is required.
### Weight merge (a location under weight_merge/ named task_<k>_coeff_<c>...): PREVIOUS_LORA_COEFF defaults to the c
### of the name, CURRENT_LORA_SCALE to 1.0, and the adapters of the earlier tasks (first task .. k-1, found beside
### the location with the same coefficient and seed) are merged into the base with PREVIOUS_LORA_COEFF first.
### Logs: logs_<tag>/evals/<run name>_step_<STEP>_lora_scale_<s>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
[ -n "${1:-}" ] || die "CHECKPOINT_LOCATION is required"
LOCATION="${1%/}"; SCALE=${2:-}; PREV_COEFF=${3:-}
STEP=${4:-10}; [[ "$STEP" =~ ^[0-9]+$ ]] || die "STEP must be an integer, got \"$STEP\""
CONFIG=${5:-crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial}
for arg in "$SCALE" "$PREV_COEFF" "$STEP" "$CONFIG"; do require_positional "a positional argument" "$arg"; done
unit_interval() { awk -v c="$2" 'BEGIN { exit !(c ~ /^[0-9]+\.?[0-9]*$/ && c >= 0 && c <= 1) }' || die "$1 must be in [0, 1], got \"$2\""; }
NAME=$(basename "$LOCATION")
MERGE=()
if [[ "$LOCATION" == *weight_merge* && "$NAME" =~ ^task_([0-9]+)_coeff_([0-9]+_[0-9]+)(.*)$ ]]; then
    TASK=${BASH_REMATCH[1]}; COEFF_TAG=${BASH_REMATCH[2]}; REST=${BASH_REMATCH[3]}
    PREV_COEFF=${PREV_COEFF:-${COEFF_TAG//_/.}}; SCALE=${SCALE:-1.0}
    echo "weight merge checkpoint of task $TASK: earlier adapters merged with coefficient $PREV_COEFF, current scale $SCALE"
    unit_interval PREVIOUS_LORA_COEFF "$PREV_COEFF"
    FIRST=$(get_first_task_id "$CONFIG"); PATHS=""
    for ((prev = FIRST; prev < TASK; prev++)); do
        ADAPTER_DIR="$(cd "$VLACRL_ROOT" && realpath -m "$(dirname "$LOCATION")")/task_${prev}_coeff_${COEFF_TAG}${REST}/checkpoints/global_step_${STEP}/actor"
        [ -d "$ADAPTER_DIR" ] || [ "$DRY_RUN" = "1" ] || die "the adapter of earlier task $prev is missing: $ADAPTER_DIR"
        PATHS="${PATHS:+$PATHS,}$ADAPTER_DIR"
    done
    [ -n "$PATHS" ] && MERGE=("++actor.model.lora_paths=[$PATHS]" "++actor.model.previous_lora_merge_coefficient=$PREV_COEFF")
else
    [ -n "$SCALE" ] || die "CURRENT_LORA_SCALE (2nd argument) is required for a single-adapter checkpoint"
    [ -z "$PREV_COEFF" ] || die "PREVIOUS_LORA_COEFF applies to weight-merge checkpoints (…/weight_merge/task_<k>_coeff_<c>…) only"
fi
unit_interval CURRENT_LORA_SCALE "$SCALE"
ROOT=$(log_root evals "$CONFIG")
ADAPTER="$(cd "$VLACRL_ROOT" && realpath -m "$LOCATION")/checkpoints/global_step_${STEP}/actor"
run_cmd "$(vlacrl_cmd vlacrl-eval)" --config-name "$CONFIG" "+actor.model.lora_path=$ADAPTER" \
    "++actor.model.lora_scale=$SCALE" "${MERGE[@]}" "runner.logger.log_path=$ROOT/${NAME}_step_${STEP}_lora_scale_${SCALE//./_}" "${@:6}"
