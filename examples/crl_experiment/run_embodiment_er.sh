#!/usr/bin/env bash
### Usage: run_embodiment_er.sh [--dry-run] TASK_ID_OR_RANGE [ER_COEFF=0.03] [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### Experience replay: behaviour-cloning cross-entropy on 1 demo per task, one replay batch per RL micro-batch.
### The replay data dir is crl.dataset_dir (see docs/methods/er.md).
### Logs: logs_<tag>/er/task_<k>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
replay_launcher er "$@"
