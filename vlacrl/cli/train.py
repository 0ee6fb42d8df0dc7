"""``vlacrl-train``: GRPO/PPO training of the policy on LIBERO with Ray workers (Hydra main).

    vlacrl-train                                   # the embedded CPU default (configs/cpu_tiny.yaml)
    vlacrl-train --config-name crl_experiment/libero_spatial_grpo_openvlaoft_spatial env.fixed_task_ids=[0]

Every reference override works (``env.fixed_task_ids=[k]``, ``+actor.model.lora_path=DIR``,
``runner.max_epochs=N``, ...). The config is validated before Ray starts; a bad value ends with one
``error:`` line and exit code 2. A failing worker ends with its first real error (role, rank) and exit 1.
"""

from __future__ import annotations

from omegaconf import DictConfig

from vlacrl.cli.common import hydra_entry


def train(cfg: DictConfig) -> int:
    from vlacrl.runners.stage import run_training

    result = run_training(cfg)
    print(f"done: {result.global_step} global steps; logs in {result.log_path}")
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}")
    success = result.metrics.get("rollout/env_info/success_once")
    if success is not None:
        print(f"last step: rollout/env_info/success_once={success:.3f}")
    return 0


main = hydra_entry(train)


if __name__ == "__main__":
    main()
