#!/usr/bin/env bash
# Shared helpers of the launchers in this folder. Each launcher keeps the reference's positional
# arguments (continual-vla-rl, examples/crl_experiment) and builds ONE command of the vlacrl CLI:
# vlacrl-crl (training sequences), vlacrl-eval, vlacrl-precompute-logits. No training logic lives here.
#   --help     as the first argument: print the launcher's usage
#   --dry-run  as the first argument: print the command and, for a training sequence (vlacrl-crl), its plan
#              (crl.dry_run=True: stages, overrides, episodes per task; no Ray, nothing written); run nothing.
#              VLACRL_LAUNCHER_PLAN=0 prints the command alone.
# Arguments after the positional ones are passed on as Hydra overrides.

VLACRL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEFAULT_CONFIG="crl_experiment/libero_spatial_grpo_openvlaoft_spatial"
DRY_RUN=0

die() { echo "ERROR: $*" >&2; exit 2; }

# launcher_flags USAGE "$@": handles --help/--dry-run; the caller then runs: shift "$FLAG_SHIFT"
launcher_flags() {
    local usage="$1"; shift
    FLAG_SHIFT=0
    case "${1:-}" in
        -h|--help) echo "$usage"; exit 0 ;;
        --dry-run) DRY_RUN=1; FLAG_SHIFT=1 ;;
    esac
}

# vlacrl_cmd NAME: the console command, from the repo's virtualenv when it exists
vlacrl_cmd() {
    if [ -x "$VLACRL_ROOT/.venv/bin/$1" ]; then echo "$VLACRL_ROOT/.venv/bin/$1"; else echo "$1"; fi
}

# run_cmd ARGS...: print the command (shell-quoted), then run it; with --dry-run print a sequence's plan instead
run_cmd() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    if [ "$DRY_RUN" = "1" ]; then
        if [ "$(basename "$1")" = "vlacrl-crl" ] && [ "${VLACRL_LAUNCHER_PLAN:-1}" != "0" ]; then
            (cd "$VLACRL_ROOT" && "$@" crl.dry_run=True) || return $?
        fi
        return 0
    fi
    cd "$VLACRL_ROOT" && "$@"
}

# task_range "a,b" | k  ->  a Hydra list "[a,a+1,...,b]" (the reference's range semantics)
task_range() {
    local input="$1" start end
    if [[ "$input" == *,* ]]; then
        IFS=',' read -r start end <<< "$input"
        start=$(echo "$start" | tr -d '()[] '); end=$(echo "$end" | tr -d '()[] ')
        [[ "$start" =~ ^[0-9]+$ && "$end" =~ ^[0-9]+$ ]] || die "task range must be \"a,b\" with integers a < b, got \"$input\""
        [ "$start" -lt "$end" ] || die "first task id ($start) must be smaller than the second ($end)"
        echo "[$(seq -s, "$start" "$end")]"
    else
        [[ "$input" =~ ^[0-9]+$ ]] || die "task id must be a non-negative integer or \"a,b\", got \"$input\""
        echo "[$input]"
    fi
}

# task_list "0,2,4" | "0 2 4"  ->  "[0,2,4]" sorted (multitask) ; task_list_ordered keeps the order
task_list_ordered() {
    local ids; ids=$(echo "$1" | tr ',' ' ' | tr -d '()[]')
    for t in $ids; do [[ "$t" =~ ^[0-9]+$ ]] || die "task ids must be integers, got \"$1\""; done
    [ -n "$ids" ] || die "no task ids given"
    echo "[$(echo $ids | tr ' ' ',')]"
}
task_list_sorted() { task_list_ordered "$(echo "$1" | tr ',' ' ' | tr -d '()[]' | tr ' ' '\n' | sort -n | tr '\n' ' ')"; }

require_seed() { [[ "$1" =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got \"$1\""; }

# require_positional NAME VALUE: a positional argument must not be a Hydra override (an argument left out)
require_positional() {
    [[ "$2" != *=* ]] || die "$1 got the override \"$2\": give every positional argument before the overrides (\"\" for its default)"
}
# require_epochs VALUE: MAX_EPOCH is empty (the config's) or a positive integer
require_epochs() { [[ -z "$1" || "$1" =~ ^[1-9][0-9]*$ ]] || die "MAX_EPOCH must be a positive integer, got \"$1\""; }

# The reference's config-name conventions (docs/launchers.md).
extract_config_tag() {
    local name; name=$(basename "$1")
    if [[ "$name" == *_openvlaoft || "$name" == *_openvla || "$name" == *_eval ]]; then echo ""
    elif [[ "$name" =~ _lr_([^_]+)$ ]]; then echo "${BASH_REMATCH[1]}"
    elif [[ "$name" == *_lr ]]; then echo ""
    else echo "${name##*_}"; fi
}
get_first_task_id() { case "$(extract_config_tag "$1")" in object) echo 5 ;; long) echo 3 ;; *) echo 0 ;; esac; }
get_default_global_step() { [ "$(extract_config_tag "$1")" = "long" ] && echo 5 || echo 10; }
inject_config_tag_into_log_path() {
    local dir="$1" tag="$2"
    [ -z "$tag" ] && { echo "$dir"; return; }
    if [[ "$dir" == logs/* ]]; then echo "logs_${tag}/${dir#logs/}"
    elif [[ "$dir" == ./logs/* ]]; then echo "./logs_${tag}/${dir#./logs/}"
    else echo "${dir//\/logs\//\/logs_${tag}\/}"; fi
}
# the VLA in a config name: _openvlaoft (OpenVLA-OFT, the reference's) or _openvla (the autoregressive OpenVLA)
VLA_NAME='_openvla(oft)?'
derive_eval_config_name() {
    local name="$1"
    if [[ "$name" =~ ^(.*${VLA_NAME})_lr_(.+)$ ]]; then echo "${BASH_REMATCH[1]}_eval_lr_${BASH_REMATCH[3]}"
    elif [[ "$name" =~ ^(.*${VLA_NAME})_lr$ ]]; then echo "${name%_lr}_eval_lr"
    elif [[ "$name" =~ ${VLA_NAME}$ ]]; then echo "${name}_eval"
    elif [[ "$name" =~ ^(.*${VLA_NAME})_([^_]+)$ ]]; then echo "${BASH_REMATCH[1]}_eval_${BASH_REMATCH[3]}"
    else echo "$name"; fi
}
# extract_model_tag CONFIG: "openvla" for the autoregressive OpenVLA's configs (…_openvla_<tag>), else "": its runs
# get their own log root (logs_<tag>_openvla/), so a sequence never continues from an OpenVLA-OFT adapter
extract_model_tag() { [[ "$(basename "$1")" =~ _openvla(_|$) ]] && echo openvla || echo ""; }

# log_root TYPE CONFIG: ./logs[_<tag>][_openvla]/TYPE
log_root() {
    local tag model; tag=$(extract_config_tag "$2"); model=$(extract_model_tag "$2")
    inject_config_tag_into_log_path "./logs/$1" "${tag}${tag:+${model:+_}}${model}"
}

# sequence_cmd METHOD TYPE TASKS CKPT MAX_EPOCH CONFIG SEED [overrides...]: the vlacrl-crl command array
sequence_cmd() {
    local method="$1" type="$2" tasks="$3" ckpt="$4" max_epoch="$5" config="$6" seed="$7"; shift 7
    require_positional CHECKPOINT_PATH "$ckpt"; require_epochs "$max_epoch"; require_positional CONFIG_NAME "$config"
    CMD=("$(vlacrl_cmd vlacrl-crl)" --config-name "$config" "crl=$method" "crl.tasks=$tasks" "crl.seed=$seed"
         "runner.logger.log_path=$(log_root "$type" "$config")" "actor.seed=$seed")
    [ -n "$ckpt" ] && CMD+=("+actor.model.lora_path=$ckpt")
    [ -n "$max_epoch" ] && CMD+=("runner.max_epochs=$max_epoch")
    CMD+=("$@")
}

# sequence_launcher METHOD TYPE TASK [CKPT] [MAX_EPOCH] [CONFIG] [SEED] [overrides...] (sequential, ewc)
sequence_launcher() {
    local method="$1" type="$2"; shift 2
    local tasks; tasks=$(task_range "${1:-0}") || exit 2
    local config=${4:-$DEFAULT_CONFIG} seed=${5:-1234}; require_seed "$seed"
    sequence_cmd "$method" "$type" "$tasks" "${2:-}" "${3:-}" "$config" "$seed" "${@:6}"
    run_cmd "${CMD[@]}"
}

# replay_launcher METHOD TASK [COEFF=0.03] [CKPT] [MAX_EPOCH] [CONFIG] [SEED] [overrides...] (er, der)
replay_launcher() {
    local method="$1"; shift
    local tasks; tasks=$(task_range "${1:-0}") || exit 2
    local coeff=${2:-0.03}
    [[ "$coeff" =~ ^[0-9.eE+-]+$ ]] || die "$(echo "$method" | tr a-z A-Z)_COEFF must be a number, got \"$coeff\""
    local config=${5:-$DEFAULT_CONFIG} seed=${6:-1234}; require_seed "$seed"
    sequence_cmd "$method" "$method" "$tasks" "${3:-}" "${4:-}" "$config" "$seed" "crl.bc_coeff=$coeff" "${@:7}"
    run_cmd "${CMD[@]}"
}
