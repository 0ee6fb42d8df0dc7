"""Test-wide settings (CPU rendering with OSMesa unless the caller chose a backend) and the probe SFT base that
the learning and continual-sequence tests share (built once per session, about a minute)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"] if os.environ["MUJOCO_GL"] != "glfw" else "osmesa")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


REPLAY_DEMOS_PER_TASK = 8


@pytest.fixture(scope="session")
def probe_base(tmp_path_factory) -> dict[str, Path]:
    """The cpu_probe SFT base (tiny OFT fine-tuned on the first 2 of the probe expert's demos per task) and its demo
    directory (``REPLAY_DEMOS_PER_TASK`` per task: ER and DER need at least one micro-batch of replay samples)."""
    from vlacrl.config.compose import compose
    from vlacrl.data.expert_demos import write_expert_demos
    from vlacrl.envs.registry import simulator_for
    from vlacrl.runners.cpu_checkpoints import ensure_tiny_checkpoint

    root = tmp_path_factory.mktemp("probe_base")
    paths = {"model": root / "sft", "tiny": root / "tiny", "demos": root / "demos"}
    cfg = compose("cpu_probe", [
        f"actor.checkpoint_load_path={paths['model']}", f"actor.tiny_sft.base_model={paths['tiny']}",
        f"actor.tiny_sft.demo_dir={paths['demos']}", "actor.create_tiny_checkpoint=true",
    ])  # fmt: skip
    simulator = simulator_for(cfg.env.train)
    tasks = range(simulator.num_tasks(str(cfg.env.train.task_suite_name)))
    write_expert_demos(simulator.sim_config(cfg.env.train), tasks, REPLAY_DEMOS_PER_TASK, paths["demos"])
    ensure_tiny_checkpoint(cfg)
    assert (paths["model"] / "config.json").exists()
    return paths
