#!/usr/bin/env bash
### Usage: run_embodiment_slca.sh [--dry-run] TASK_ID_OR_RANGE [LR_STRING="4.0e-6,4.0e-6,4.0e-5"] [CONFIG_NAME] [SEED] [overrides...]
### SLCA (slow learner): LoRA learning rates per component "vision,llm,head"; tasks chained like Seq. FT.
### Logs: logs_<tag>/slca/task_<k>_lr_v<V>_l<L>_h<H>_seed<S>/ (4.0e-6 -> 4e6)
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
TASKS=$(task_range "${1:-0}") || exit 2
LRS=${2:-4.0e-6,4.0e-6,4.0e-5}; IFS=',' read -r V L H <<< "$LRS"
[ -n "$V" ] && [ -n "$L" ] && [ -n "$H" ] || die "LR_STRING must be \"vision,llm,head\", got \"$LRS\""
short() { echo "$1" | sed -E 's/\.0+([eE])/\1/; s/\.//g; s/e-/e/; s/E-/e/'; }
CONFIG=${3:-$DEFAULT_CONFIG}; SEED=${4:-1234}; require_seed "$SEED"
sequence_cmd slca slca "$TASKS" "" "" "$CONFIG" "$SEED" "crl.vision_lora_lr=$V" "crl.llm_lora_lr=$L" \
    "crl.lm_head_lora_lr=$H" "crl.stage_dir='task_{tasks}_lr_v$(short "$V")_l$(short "$L")_h$(short "$H")_seed{seed}'" "${@:5}"
run_cmd "${CMD[@]}"
