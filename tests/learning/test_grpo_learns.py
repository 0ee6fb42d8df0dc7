"""GRPO moves the policy toward reward: the real pipeline (Ray, FSDP2, peft LoRA, the probe world) on the SFT base.

The flipped-sign variant shows the check can fail: with every advantage negated (patched into every process of
the run, Ray workers included, through ``sitecustomize``) the same run does not learn.
"""

import textwrap

import pytest
from probe_runs import learned, probe_overrides, run_cli, scalar_curve

pytestmark = [pytest.mark.ray]

TASK = 1  # "top": the SFT base reaches it in about 40% of episodes (docs/probe.md)
STEPS = 7
SUCCESS = "rollout/env_info/success_once"
GRAD_NORM = "train/actor/grad_norm"


def grpo_run(probe_base, log_path, env=None):
    overrides = probe_overrides(probe_base, log_path, f"env.fixed_task_ids=[{TASK}]", f"runner.max_epochs={STEPS}",
                                f"runner.save_interval={STEPS}")  # fmt: skip
    run_cli("vlacrl.cli.train", overrides, env=env)
    return scalar_curve(log_path, SUCCESS), scalar_curve(log_path, GRAD_NORM)


def test_grpo_raises_success_on_a_probe_task(probe_base, tmp_path):
    success, grad_norms = grpo_run(probe_base, tmp_path / "run")
    print(f"GRPO rollout success by step: {success}")
    assert len(success) == STEPS
    assert learned(success), f"rollout success by step: {success}"
    assert grad_norms[0] > 0, "the first step trained on a zero gradient"


FLIP_ADVANTAGES = textwrap.dedent("""
    import vlacrl.algorithms as algorithms
    _original = algorithms.compute_advantages_and_returns
    def _flipped(*args, **kwargs):
        advantages, returns = _original(*args, **kwargs)
        return -advantages, returns
    algorithms.compute_advantages_and_returns = _flipped
""")


@pytest.mark.slow
def test_grpo_with_flipped_advantages_does_not_learn(probe_base, tmp_path):
    patch_dir = tmp_path / "patch"
    patch_dir.mkdir()
    (patch_dir / "sitecustomize.py").write_text(FLIP_ADVANTAGES)
    success, grad_norms = grpo_run(probe_base, tmp_path / "run", env={"PYTHONPATH": str(patch_dir)})
    print(f"flipped-advantage rollout success by step: {success}")
    assert grad_norms[0] > 0
    assert not learned(success), f"a flipped advantage sign still learned: {success}"
