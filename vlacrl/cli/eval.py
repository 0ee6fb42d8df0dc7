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
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, open_dict

from vlacrl.cli.launch import config_path, run_guarded, start_run
from vlacrl.runners.embodied import EmbodiedRunner


def evaluate(cfg: DictConfig) -> int:
    with open_dict(cfg):
        stamp = time.strftime("%Y%m%d_%H%M%S")
        cfg.runner.logger.log_path = str(Path(str(cfg.runner.logger.log_path)) / "evals" / stamp)
        cfg.runner.only_eval = True
    start = time.perf_counter()
    with start_run(cfg, train=False) as (resolved, groups, metric_logger, _):
        runner = EmbodiedRunner(resolved, groups, metric_logger)
        metrics = runner.evaluate()
        metric_logger.log(metrics, step=0)
        out = Path(resolved["runner"]["logger"]["log_path"]) / "eval_metrics.json"
        out.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    print(f"eval_metrics={json.dumps(metrics, sort_keys=True)}")
    print(f"Eval time: {time.perf_counter() - start:.1f}s; metrics in {out}")
    return 0


@hydra.main(config_path=config_path(), config_name="cpu_tiny", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    sys.exit(run_guarded(evaluate, cfg))


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
