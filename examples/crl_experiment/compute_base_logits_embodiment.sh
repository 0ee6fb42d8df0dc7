#!/usr/bin/env bash
### Usage: compute_base_logits_embodiment.sh [--dry-run] [CONFIG_NAME=crl_experiment/libero_spatial_grpo_openvlaoft_spatial] [vlacrl-precompute-logits options...]
### Builds the ER/DER replay cache (demos + the base model's action logits) for the config's suite with
### the config's SFT checkpoint under model/. Input, as the reference: the RLDS release openvla/modified_libero_rlds
### in LIBERO/datasets/modified_libero_rlds/<suite>_no_noops/1.0.0 (downloaded by you), every episode; --rlds DIR
### names another folder, --input DIR LIBERO's HDF5 demos. See docs/data.md.
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
CONFIG=${1:-$DEFAULT_CONFIG}
case "$(extract_config_tag "$CONFIG")" in
    object) SUITE=libero_object; MODEL=Openvla-oft-SFT-libero-object-traj1 ;;
    long) SUITE=libero_10; MODEL=Openvla-oft-SFT-libero10-trajall ;;
    *) SUITE=libero_spatial; MODEL=Openvla-oft-SFT-libero-spatial-traj1 ;;
esac
run_cmd "$(vlacrl_cmd vlacrl-precompute-logits)" --suite "$SUITE" --model-dir "$VLACRL_ROOT/model/$MODEL" "${@:2}"
