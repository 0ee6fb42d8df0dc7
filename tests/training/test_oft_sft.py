"""Supervised fine-tuning of a tiny OpenVLA-OFT directory on probe expert demos (the probe SFT base's recipe)."""

import json

import torch

from vlacrl.config.compose import compose
from vlacrl.data.expert_demos import write_expert_demos
from vlacrl.envs.probe.world import ProbeConfig
from vlacrl.models.openvla_oft import write_tiny_checkpoint
from vlacrl.models.openvla_oft.checkpoint import load_policy
from vlacrl.training.oft_sft import INFO_FILE, SFTConfig, supervised_finetune


def test_sft_lowers_the_action_token_loss_and_writes_a_loadable_directory(tmp_path):
    base = write_tiny_checkpoint(tmp_path / "tiny")
    world = ProbeConfig(action_centre=(0.075, 0.075, 0.025), step_size=0.05)
    demos = write_expert_demos(world, [0, 3], 1, tmp_path / "demos")
    record = supervised_finetune(base, demos, tmp_path / "sft", SFTConfig(steps=8, batch_size=8, lr=3e-3))
    assert record["last"]["loss"] < record["first"]["loss"] - 1.0  # from about 5.8 (uniform over 256 bins)
    assert json.loads((tmp_path / "sft" / INFO_FILE).read_text())["num_samples"] == record["num_samples"] > 8
    tuned = load_policy(tmp_path / "sft", dtype=torch.float32).checkpoint_state_dict()
    original = load_policy(base, dtype=torch.float32).checkpoint_state_dict()
    assert tuned.keys() == original.keys()
    assert any(not torch.equal(tuned[k], original[k]) for k in original)


def test_sft_base_reads_existing_demos_in_task_order(tmp_path):
    """A demo folder recorded in an earlier run gives the SFT base the same sample order (so the same base) as
    demos recorded now: task-id order, not the folder's name order."""
    from vlacrl.data import replay_files
    from vlacrl.runners.cpu_checkpoints import _expert_demo_files

    cfg = compose("cpu_probe", [f"actor.tiny_sft.demo_dir={tmp_path / 'demos'}", "actor.tiny_sft.demos_per_task=1"])
    recorded = _expert_demo_files(cfg, cfg.actor.tiny_sft)
    assert replay_files(tmp_path / "demos") != recorded  # name order differs from task order
    assert _expert_demo_files(cfg, cfg.actor.tiny_sft) == recorded
    assert recorded[0].name.startswith("move_the_gripper_to_the_red_zone")  # task 0, right
