#!/usr/bin/env bash
### Usage: run_embodiment_ewc.sh [--dry-run] TASK_ID_OR_RANGE [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### EWC on the LoRA parameters (lambda = crl.ewc_lambda, default 1e6); the Fisher of each task is written
### to its run dir (ewc_data.pt) and accumulated online. Arguments as run_embodiment_sequential.sh.
### Logs: logs_<tag>/ewc/task_<k>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
sequence_launcher ewc ewc "$@"
