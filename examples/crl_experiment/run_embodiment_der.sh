#!/usr/bin/env bash
### Usage: run_embodiment_der.sh [--dry-run] TASK_ID_OR_RANGE [DER_COEFF=0.03] [CHECKPOINT_PATH] [MAX_EPOCH] [CONFIG_NAME] [SEED] [overrides...]
### Dark experience replay: ER plus MSE to the cached base-model logits (build them with compute_base_logits_embodiment.sh).
### The replay data dir is crl.dataset_dir (see docs/methods/der.md).
### Logs: logs_<tag>/der/task_<k>_seed<S>/
source "$(dirname "${BASH_SOURCE[0]}")/common_functions.sh"
launcher_flags "$(sed -n 's/^### \{0,1\}//p' "$0")" "$@"; shift "$FLAG_SHIFT"
replay_launcher der "$@"
