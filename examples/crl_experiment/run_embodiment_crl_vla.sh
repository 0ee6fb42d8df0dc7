#!/usr/bin/env bash
### Usage: run_embodiment_crl_vla.sh [--dry-run] TASK_ID_OR_RANGE [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### CRL-VLA: one chained LoRA adapter + goal-conditioned dual critic + old-task buffer (KL and value anchors).
### TASK_ID_OR_RANGE: k, or "a,b" (tasks a..b). CHECKPOINT_PATH: adapter for the first task of the range.
### Defaults: CONFIG_NAME=crl_experiment/libero_spatial_grpo_openvlaoft_spatial SEED=1234. Q critic: add crl.critic=q.
### Logs: logs_<tag>/crl_vla/task_<k>_seed<S>/{checkpoints/global_step_<G>/actor, crl_vla/}
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
sequence_launcher crl_vla crl_vla "$@"
