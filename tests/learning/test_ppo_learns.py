"""PPO (GAE, value head) moves the policy toward reward on a probe task, from the SFT base."""

import pytest
from probe_runs import learned, probe_overrides, run_cli, scalar_curve

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASK, STEPS = 1, 10


def test_ppo_raises_success_on_a_probe_task(probe_base, tmp_path):
    log_path = tmp_path / "run"
    overrides = probe_overrides(probe_base, log_path, "algorithm=ppo", f"env.fixed_task_ids=[{TASK}]",
                                f"runner.max_epochs={STEPS}", f"runner.save_interval={STEPS}")  # fmt: skip
    run_cli("vlacrl.cli.train", overrides)
    success = scalar_curve(log_path, "rollout/env_info/success_once")
    print(f"PPO rollout success by step: {success}")
    assert len(success) == STEPS
    assert learned(success), f"rollout success by step: {success}"
    assert scalar_curve(log_path, "train/actor/grad_norm")[0] > 0
