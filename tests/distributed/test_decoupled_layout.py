"""Decoupled world sizes: 4 env workers feeding 2 rollout workers feeding 1 actor rank train exactly what the
coupled layout (1 env / 1 rollout / 1 actor worker) trains with the same 4 env shards as pipeline stages.

The sampled init states and the sampling noise of an env depend only on its env shard (docs/architecture.md,
"Placement"), and the actor rank receives the rollout workers' batches joined along the env axis in env order, so
the two runs must agree bit for bit: every logged metric at every step and the trained adapter. The runs use the
probe SFT base on probe task 1, where about 40 % of episodes succeed, so the GRPO updates have a real gradient
(asserted).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "learning"))
from probe_runs import probe_overrides, run_cli, scalar_curve  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STEPS = 2
COMMON = ["env.fixed_task_ids=[1]", f"runner.max_epochs={STEPS}", f"runner.save_interval={STEPS}",
          "algorithm.num_group_envs=4", "algorithm.group_size=4", "env.train.video_cfg.save_video=False"]  # fmt: skip
DECOUPLED = ["~cluster.component_placement", "+cluster.component_placement={actor:'cpu:1',rollout:'cpu:2',env:'cpu:4'}"]
COUPLED = ["rollout.pipeline_stage_num=4"]
TAGS = ["rollout/env_info/success_once", "train/actor/grad_norm", "train/actor/policy_loss", "rollout/advantages_mean",
        "train/actor/ppo_kl"]  # fmt: skip


def adapter(run: Path) -> dict:
    return load_file(str(run / "checkpoints" / f"global_step_{STEPS}" / "actor" / "adapter_model.safetensors"))


def test_four_env_two_rollout_one_actor_equals_the_coupled_layout(probe_base, tmp_path):
    decoupled = run_cli("vlacrl.cli.train", probe_overrides(probe_base, tmp_path / "decoupled", *COMMON, *DECOUPLED))
    assert "4 env" in decoupled.stdout + decoupled.stderr and "2 rollout" in decoupled.stdout + decoupled.stderr
    run_cli("vlacrl.cli.train", probe_overrides(probe_base, tmp_path / "coupled", *COMMON, *COUPLED))
    curves = {tag: [scalar_curve(tmp_path / run, tag) for run in ("decoupled", "coupled")] for tag in TAGS}
    print({tag: pair[0] for tag, pair in curves.items()})
    for tag, (a, b) in curves.items():
        assert len(a) == STEPS and a == b, f"{tag}: decoupled {a} vs coupled {b}"
    assert min(curves["train/actor/grad_norm"][0]) > 0, "a step trained on a zero gradient"
    first, second = adapter(tmp_path / "decoupled"), adapter(tmp_path / "coupled")
    assert first.keys() == second.keys()
    assert all(first[k].equal(second[k]) for k in first), "the trained adapters differ"
