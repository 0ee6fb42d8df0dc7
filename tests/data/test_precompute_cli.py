"""``vlacrl-precompute-logits`` end to end on a LIBERO-format demo file with the tiny model (RLDS: test_rlds.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlacrl.cli.precompute_logits import main
from vlacrl.data import ReplayDataset, read_cache_file
from vlacrl.data.formats import expert_windows
from vlacrl.data.libero_hdf5 import write_libero_demo_file
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, load_policy, write_tiny_checkpoint

INSTRUCTION = "pick up the black bowl on the stove and place it on the plate"
LENGTHS = (10, 9)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny", seed=0)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """A LIBERO-format file with 2 demos: upside-down ('opengl') frames, LIBERO gripper ±1, no no-op steps."""
    rng = np.random.default_rng(0)
    demos = []
    for steps in LENGTHS:
        actions = rng.uniform(-0.9, 0.9, (steps, 7))
        actions[:, -1] = np.where(rng.random(steps) < 0.5, -1.0, 1.0)
        demos.append((actions, rng.integers(0, 256, (steps, 24, 24, 3), dtype=np.uint8)))
    path = tmp_path_factory.mktemp("demos") / "pick_up_the_black_bowl_on_the_stove_and_place_it_on_the_plate_demo.hdf5"
    return write_libero_demo_file(path, INSTRUCTION, demos), demos


def test_precompute_end_to_end(model_dir, demo_file, tmp_path, capsys):
    path, source = demo_file
    out = tmp_path / "cache"
    argv = ["--model-dir", str(model_dir), "--input", str(path), "--output-dir", str(out), "--batch-size", "4"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "base model BC cross-entropy" in printed
    files = sorted(out.glob("*.hdf5"))
    assert [f.name for f in files] == ["pick_up_the_black_bowl_on_the_stove_and_place_it_on_the_plate.hdf5"]
    cache = dict(read_cache_file(files[0]))
    assert sorted(cache) == ["demo_0", "demo_1"]

    policy = load_policy(model_dir, dtype=torch.float32, unnorm_key="libero_spatial_no_noops")
    processor = OpenVLAOFTProcessor.from_model_dir(model_dir)
    for name, (actions, frames) in zip(("demo_0", "demo_1"), source):
        demo, steps = cache[name], len(actions)
        np.testing.assert_array_equal(demo.images, frames[:, ::-1, ::-1])  # rotated to the policy orientation
        np.testing.assert_allclose(demo.actions[:, :6], actions[:, :6], rtol=1e-6)
        np.testing.assert_array_equal(demo.actions[:, -1], (1 - actions[:, -1]) / 2)  # OpenVLA gripper
        inputs = processor([INSTRUCTION] * steps, torch.from_numpy(demo.images.copy()).float())
        with torch.no_grad():
            logits = policy(inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"]).logits
        assert demo.processed_action_logits.shape == (steps, 56, 256)
        torch.testing.assert_close(
            torch.from_numpy(demo.processed_action_logits), logits[..., 31744:32000], atol=1e-4, rtol=1e-4
        )
        assert demo.predicted_actions.shape == (steps, 8, 7)
        greedy = logits[..., 31744:32000].argmax(-1) + 31744
        expected_pred = policy.action_tokenizer.decode(greedy.reshape(steps, 8, 7)).float()
        torch.testing.assert_close(torch.from_numpy(demo.predicted_actions), expected_pred)
        expected_tokens = policy.action_tokenizer.encode(torch.from_numpy(expert_windows(demo.actions, 8)))
        np.testing.assert_array_equal(demo.action_tokens, expected_tokens.numpy())
        assert demo.action_tokens.shape == (steps - 7, 56)
    assert len(ReplayDataset(files, demos_per_task=2, with_logits=True)) == sum(n - 7 for n in LENGTHS)

    assert main(argv) == 0  # an existing file is kept unless --overwrite
    assert "skipped" in capsys.readouterr().out


def test_precompute_options(model_dir, demo_file, tmp_path):
    path, source = demo_file
    out = tmp_path / "er_only"
    assert main(["--no-logits", "--input", str(path.parent), "--output-dir", str(out), "--first-demo", "1"]) == 0
    ((name, demo),) = read_cache_file(next(out.glob("*.hdf5")))
    assert name == "demo_1" and demo.num_steps == LENGTHS[1] and demo.processed_action_logits is None


def test_errors_are_one_line(model_dir, tmp_path, capsys):
    assert main(["--model-dir", str(tmp_path / "no_model"), "--input", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["--no-logits", "--input", str(tmp_path / "nothing.hdf5")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["--input", str(tmp_path)])  # --model-dir missing: usage error
