"""Simple CNN supervised pre-training (docs/methods/simple_cnn.md): statistics, bin targets, a tiny run, CLI errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vlacrl.cli.train_simple_cnn import main
from vlacrl.data.libero_hdf5 import write_libero_demo_file
from vlacrl.models.simple_cnn import CHECKPOINT_KEYS, SimpleCNNPolicy, load_checkpoint
from vlacrl.training.simple_cnn_sft import (
    SFTConfig,
    action_bin_targets,
    checkpoint_names,
    compute_action_statistics,
    split_train_val,
    train_simple_cnn,
)

KEY = "libero_spatial_no_noops"
TASKS = {"open_the_top_drawer_demo.hdf5": "open the top drawer", "pick_up_the_bowl_demo.hdf5": "pick up the bowl"}
STEPS = 16  # 9 samples (8-step chunks) per demo


def test_action_statistics_on_hand_values():
    column = np.arange(101, dtype=np.float64)  # 0 … 100
    actions = np.stack([column, -column, np.full(101, 3.0)], axis=1)
    stats = compute_action_statistics(actions, KEY)
    assert list(stats) == [KEY] and sorted(stats[KEY]["action"]) == ["max", "mean", "min", "q01", "q99", "std"]
    action = stats[KEY]["action"]
    np.testing.assert_allclose(action["q01"], [1.0, -99.0, 3.0])
    np.testing.assert_allclose(action["q99"], [99.0, -1.0, 3.0])
    np.testing.assert_allclose(action["min"], [0.0, -100.0, 3.0])
    np.testing.assert_allclose(action["max"], [100.0, 0.0, 3.0])
    np.testing.assert_allclose(action["mean"], [50.0, -50.0, 3.0])
    np.testing.assert_allclose(action["std"], [math.sqrt(850.0), math.sqrt(850.0), 0.0])
    assert "mask" not in action


def test_bin_targets_on_hand_values():
    stats = {KEY: {"action": {"q01": [-1.0] * 6 + [0.0], "q99": [1.0] * 6 + [1.0]}}}
    actions = np.array([[0.0, 1.0, -1.0, 0.5, 2.0, -3.0, 0.0], [0.0] * 6 + [1.0]])
    bins = action_bin_targets(actions, stats, KEY)
    # centers c_k = -1 + (2k + 1) / 255: 0 → 127, ±1 → 254 / 0, 0.5 → 191, out of range → the end bins;
    # the gripper is normalised too (no mask): 0 → -1 → bin 0, 1 → +1 → bin 254.
    assert bins.dtype == torch.int64
    assert bins.tolist() == [[127, 254, 0, 191, 254, 0, 0], [127] * 6 + [254]]


def test_split_and_checkpoint_schedule():
    train, val = split_train_val(100, 0.1, seed=3)
    assert len(val) == 10 and sorted(train + val) == list(range(100))
    assert split_train_val(100, 0.1, seed=3) == (train, val)
    assert len(split_train_val(5, 0.1, seed=0)[1]) == 1
    assert checkpoint_names(5, True, 5) == ["best_checkpoint.pt", "checkpoint_epoch_5.pt"]
    assert checkpoint_names(4, False, 5) == []


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """2 tasks × 1 demo in LIBERO's HDF5 layout: constant, distinct frames and actions per task."""
    root = tmp_path_factory.mktemp("libero_demos")
    rng = np.random.default_rng(0)
    for index, (name, instruction) in enumerate(TASKS.items()):
        actions = np.tile(rng.uniform(-0.8, 0.8, (1, 7)), (STEPS, 1))
        actions[:, :6] += rng.normal(0, 0.05, (STEPS, 6))
        actions[:, -1] = 1.0 if index else -1.0
        frames = np.full((STEPS, 32, 32, 3), 40 + 160 * index, dtype=np.uint8)
        write_libero_demo_file(root / name, instruction, [(actions, frames)])
    return root


def test_tiny_training_run_writes_loadable_checkpoints(demo_dir, tmp_path):
    cfg = SFTConfig(
        data=[demo_dir], out_dir=tmp_path / "out", epochs=2, batch_size=4, device="cpu", show_progress=False
    )
    result = train_simple_cnn(cfg)
    assert result.task_id_map == {"open the top drawer": 0, "pick up the bowl": 1}
    assert (result.num_train, result.num_val) == (17, 1)
    losses = [row["train_loss"] for row in result.history]
    assert losses[1] < losses[0] < math.log(256) + 1.0  # learning signal

    payload = torch.load(tmp_path / "out" / "best_checkpoint.pt", map_location="cpu", weights_only=False)
    assert set(payload) == set(CHECKPOINT_KEYS)
    assert payload["num_tasks"] == 2 and payload["n_action_bins"] == 256 and payload["unnorm_key"] == KEY
    assert sorted(payload["norm_stats"][KEY]["action"]) == ["max", "mean", "min", "q01", "q99", "std"]
    assert payload["task_id_map"] == result.task_id_map and payload["optimizer_state_dict"] is not None
    model, meta = load_checkpoint(tmp_path / "out" / "best_checkpoint.pt")
    assert isinstance(model, SimpleCNNPolicy) and meta["epoch"] in (1, 2)
    assert not (tmp_path / "out" / "checkpoint_epoch_5.pt").exists()


def test_cli_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: input") and "nope" in err and "\n" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--data", str(empty), "--out", str(tmp_path / "out")]) == 2
    assert "no .hdf5 files" in capsys.readouterr().err


def test_cli_default_data_is_the_suites_replay_folder(tmp_path, monkeypatch, capsys):
    """As the reference (``…_simplevla_trajall``): the RLDS-derived replay files of the suite, every episode."""
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "LIBERO"))
    assert main(["--out", str(tmp_path / "out")]) == 2
    expected = tmp_path / "LIBERO" / "datasets" / "datasets_with_logits" / "libero_spatial_simplevla"
    assert str(expected) in capsys.readouterr().err


def test_label_smoothing_targets_a_mixture_of_the_demo_bin_and_uniform():
    from vlacrl.training.simple_cnn_sft import chunk_cross_entropy

    targets = torch.tensor([[3, 7]])
    eps = 0.8
    mixture = torch.full((1, 2, 256), eps / 256)
    mixture[0, 0, 3] += 1 - eps
    mixture[0, 1, 7] += 1 - eps
    optimum = mixture.log()  # logits whose softmax is the smoothed target
    entropy = float(-(mixture * mixture.log()).sum(-1).mean())
    assert float(chunk_cross_entropy(optimum, targets, eps)) == pytest.approx(entropy, rel=1e-5)
    peaked = torch.zeros(1, 2, 256)
    peaked[0, 0, 3] = peaked[0, 1, 7] = 20.0  # the unsmoothed optimum is worse under smoothing
    assert float(chunk_cross_entropy(peaked, targets, eps)) > entropy + 1.0
    assert float(chunk_cross_entropy(peaked, targets)) < 1e-6


def test_probe_cnn_sft_base_is_made_on_first_use(tmp_path):
    """cpu_probe_cnn's ``actor.tiny_sft``: demos recorded at cpu_probe's step size, the CNN pre-trained at the
    RL image size, the last epoch written where ``actor.checkpoint_load_path`` points."""
    import dataclasses

    import h5py

    from vlacrl.config.compose import compose
    from vlacrl.data.expert_demos import write_expert_demos
    from vlacrl.envs.registry import simulator_for
    from vlacrl.models.simple_cnn_rl import load_rl_policy
    from vlacrl.runners.cpu_checkpoints import ensure_tiny_checkpoint

    path = tmp_path / "cnn" / "best_checkpoint.pt"
    cfg = compose("cpu_probe_cnn", [
        f"actor.checkpoint_load_path={path}", f"actor.tiny_sft.demo_dir={tmp_path / 'demos'}",
        "actor.tiny_sft.epochs=1", "actor.tiny_sft.demos_per_task=1", "actor.create_tiny_checkpoint=true",
    ])  # fmt: skip
    ensure_tiny_checkpoint(cfg)
    policy = load_rl_policy(path)
    assert len(policy.meta["task_id_map"]) == 10 and policy.meta["epoch"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["best_checkpoint.pt"]  # no epoch files left over
    frames = {}
    for step in (0.05, 0.12):  # the same demo recorded directly at cpu_probe's and at cpu_probe_cnn's step size
        world = dataclasses.replace(simulator_for(cfg.env.train).sim_config(cfg.env.train), step_size=step)
        (written,) = write_expert_demos(world, [0], 1, tmp_path / f"ref_{step}")
        with h5py.File(written) as demos:
            frames[step] = demos["data/demo_0/obs/agentview_rgb"][:]
    with h5py.File(tmp_path / "demos" / written.name) as demos:
        recorded = demos["data/demo_0/obs/agentview_rgb"][:]
    assert np.array_equal(recorded, frames[0.05]) and not np.array_equal(recorded, frames[0.12])
