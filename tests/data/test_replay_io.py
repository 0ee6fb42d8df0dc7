"""LIBERO demo files and the logit cache: conversions, naming rules, writer/reader round trip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from vlacrl.data import Demo, ReplayDataError, cache_file_name, read_cache_demo, read_cache_file, write_cache_file
from vlacrl.data.formats import libero_gripper_to_openvla, noop_mask, task_description_from_filename
from vlacrl.data.libero_hdf5 import (
    is_libero_demo_file,
    libero_instruction,
    list_demos,
    read_libero_demo,
    write_libero_demo_file,
)
from vlacrl.data.logit_cache import cache_instruction


def _frames(steps: int, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (steps, size, size, 3), dtype=np.uint8)


def _demo(steps: int, seed: int = 0, with_logits: bool = True) -> Demo:
    rng = np.random.default_rng(seed)
    return Demo(
        actions=rng.uniform(-1, 1, (steps, 7)).astype(np.float32),
        images=_frames(steps, seed=seed),
        wrist_images=_frames(steps, seed=seed + 1),
        processed_action_logits=rng.normal(size=(steps, 56, 256)).astype(np.float32) if with_logits else None,
        predicted_actions=rng.normal(size=(steps, 8, 7)).astype(np.float32) if with_logits else None,
        action_tokens=rng.integers(31744, 32000, (max(steps - 7, 0), 56)) if with_logits else None,
    )


def test_cache_round_trip(tmp_path):
    demos = [("demo_0", _demo(10, 0)), ("demo_1", _demo(9, 5, with_logits=False))]
    path = write_cache_file(
        tmp_path / cache_file_name("put the bowl on the plate"), demos, instruction="put the bowl on the plate"
    )
    assert path.name == "put_the_bowl_on_the_plate.hdf5"
    assert not list(tmp_path.glob(".*.tmp"))  # the temp file is gone
    with h5py.File(path, "r") as file:  # the docs/methods/er.md layout, key by key
        group = file["data/demo_0"]
        assert group["actions"].shape == (10, 7) and group["actions"].dtype == np.float32
        assert group["obs/agentview_rgb"].shape == (10, 8, 8, 3) and group["obs/agentview_rgb"].dtype == np.uint8
        assert group["processed_action_logits"].shape == (10, 56, 256)
        assert group["predicted_actions"].shape == (10, 8, 7)
        assert group["action_tokens"].shape == (3, 56)
        assert "processed_action_logits" not in file["data/demo_1"]
    read = dict(read_cache_file(path))
    for name, demo in demos:
        for key in (
            "actions",
            "images",
            "wrist_images",
            "processed_action_logits",
            "predicted_actions",
            "action_tokens",
        ):
            expected, got = getattr(demo, key), getattr(read[name], key)
            if expected is None:
                assert got is None
            else:
                np.testing.assert_array_equal(got, expected)
    assert cache_instruction(path) == "put the bowl on the plate"
    assert read_cache_demo(path, "demo_0", with_optional=False).processed_action_logits is None


def test_task_description_from_file_name():
    assert task_description_from_filename("a/put_the_bowl_on_the_plate_demo.hdf5") == "put the bowl on the plate"
    assert task_description_from_filename("put_the_bowl_on_the_plate.hdf5") == "put the bowl on the plate"
    assert task_description_from_filename("open_the_demo_drawer.hdf5") == "open the demo drawer"
    name = cache_file_name("pick up the black bowl next to the cookie box and place it on the plate")
    assert (
        task_description_from_filename(name)
        == "pick up the black bowl next to the cookie box and place it on the plate"
    )


def test_gripper_convention():
    """LIBERO −1 (open) → 1, +1 (close) → 0; other dims unchanged."""
    actions = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -1.0], [0, 0, 0, 0, 0, 0, 1.0]], dtype=np.float32)
    converted = libero_gripper_to_openvla(actions)
    np.testing.assert_array_equal(converted[:, -1], [1.0, 0.0])
    np.testing.assert_array_equal(converted[:, :-1], actions[:, :-1])
    assert actions[0, -1] == -1.0  # input untouched


def test_noop_mask():
    """OpenVLA's rule: small motion and the gripper command of the previous *kept* step → dropped."""
    actions = np.zeros((6, 7), dtype=np.float32)
    actions[:, -1] = [-1, -1, 1, 1, 1, 1]
    actions[1, 0] = 0.5  # moves: kept
    actions[5, 0] = 0.5
    # step 0: first step, no motion → dropped; 2: gripper changes vs kept step 1 → kept; 3, 4: no-ops
    np.testing.assert_array_equal(noop_mask(actions), [False, True, True, False, False, True])


def test_libero_demo_reader(tmp_path):
    """Lexicographic demo order, instruction from problem_info, 180° frames, gripper converted, no-ops dropped."""
    rng = np.random.default_rng(0)
    demos = []
    for index in range(11):
        actions = rng.uniform(-1, 1, (6, 7))
        actions[:, -1] = np.sign(actions[:, -1])
        demos.append((actions, _frames(6, seed=index)))
    demos[0][0][0, :6] = 0.0  # a no-op first step
    path = write_libero_demo_file(tmp_path / "LIVING_ROOM_SCENE1_open_the_drawer_demo.hdf5", "open the drawer", demos)
    assert is_libero_demo_file(path)
    assert libero_instruction(path) == "open the drawer"
    assert list_demos(path)[:4] == ["demo_0", "demo_1", "demo_10", "demo_2"]
    demo = read_libero_demo(path, "demo_0")
    assert demo.num_steps == 5
    np.testing.assert_array_equal(demo.images, demos[0][1][1:, ::-1, ::-1])
    np.testing.assert_allclose(demo.actions[:, -1], (1 - demos[0][0][1:, -1]) / 2)
    kept = read_libero_demo(path, "demo_0", filter_noops=False)
    assert kept.num_steps == 6
    with pytest.raises(ReplayDataError, match="no demo"):
        read_libero_demo(path, "demo_99")


def test_cache_files_are_not_libero_files(tmp_path):
    path = write_cache_file(tmp_path / "x.hdf5", [("demo_0", _demo(8))])
    assert not is_libero_demo_file(path)
    with pytest.raises(ReplayDataError, match="cannot open"):
        list_demos(tmp_path / "missing.hdf5")
