"""``vlacrl-eval``: evaluate a policy (base model, or + a LoRA adapter) on LIBERO tasks (Hydra main).

    vlacrl-eval +actor.model.lora_path=runs/cpu_tiny/checkpoints/global_step_2/actor
    vlacrl-eval --config-name crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial \\
        +actor.model.lora_path=logs_spatial/sequential/task_0_seed1234/checkpoints/global_step_10/actor

Runs ``algorithm.eval_rollout_epoch`` epochs over every task of ``env.eval`` (or ``env.fixed_task_ids``)
with the eval env settings (512-step episodes, no early termination, temperature_eval). Writes
``eval_metrics.json`` and TensorBoard/WandB scalars ``eval/env_info/task_<k>_success`` ... under
``<runner.logger.log_path>/evals/<time>/`` and prints ``eval_metrics={...}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from vlacrl.cli.common import hydra_entry


def evaluate(cfg: DictConfig) -> int:
    from vlacrl.runners.stage import run_evaluation

    start = time.perf_counter()
    out = Path(str(cfg.runner.logger.log_path)) / "evals" / time.strftime("%Y%m%d_%H%M%S")
    metrics = run_evaluation(cfg, out)
    print(f"eval_metrics={json.dumps(metrics, sort_keys=True)}")
    print(f"Eval time: {time.perf_counter() - start:.1f}s; metrics in {out / 'eval_metrics.json'}")
    return 0


main = hydra_entry(evaluate)


if __name__ == "__main__":
    main()
