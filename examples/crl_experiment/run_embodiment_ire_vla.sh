#!/usr/bin/env bash
### Usage: run_embodiment_ire_vla.sh [--dry-run] TASK_ID_OR_RANGE [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### iRe-VLA: per task, RL with only the action output trainable (MAX_EPOCH = Stage-1 steps), then supervised
### consolidation on expert demos + successful RL episodes (crl.stage2_steps; demos from crl.dataset_dir, as ER).
### TASK_ID_OR_RANGE: k, or "a,b" (tasks a..b). CHECKPOINT_PATH: adapter for the first task of the range.
### Defaults: CONFIG_NAME=crl_experiment/libero_spatial_grpo_openvlaoft_spatial SEED=1234.
### Logs: logs_<tag>/ire_vla/task_<k>_seed<S>/{checkpoints/global_step_<G>/actor, ire_vla/stage2_adapter}
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
sequence_launcher ire_vla ire_vla "$@"
