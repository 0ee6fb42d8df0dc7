"""ReplayDataset (docs/methods/er.md): files, demo selection, sample count, sharding, items; the batch iterator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlacrl.data import (
    Demo,
    ReplayBatchIterator,
    ReplayCollator,
    ReplayDataError,
    ReplayDataset,
    replay_files,
    select_task_files,
    write_cache_file,
)
from vlacrl.data.replay_dataset import CyclingBatchSampler
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, load_policy, write_tiny_checkpoint

TASKS = ("put the bowl on the plate", "open the top drawer")


def _demo(steps: int, seed: int) -> Demo:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-0.5, 0.5, (steps, 7)).astype(np.float32)
    actions[:, -1] = rng.integers(0, 2, steps)  # OpenVLA gripper convention: 0 / 1
    actions[:, 0] = np.arange(steps) + 100 * seed  # tags (seed, t) for the content checks
    return Demo(
        actions=actions,
        images=rng.integers(0, 256, (steps, 16, 16, 3), dtype=np.uint8),
        processed_action_logits=rng.normal(size=(steps, 56, 256)).astype(np.float32),
    )


@pytest.fixture(scope="module")
def replay_dir(tmp_path_factory):
    """Two task files: task 0 with demos of 10, 12 (demo_1) and 11 (demo_10) steps, task 1 with one of 9."""
    root = tmp_path_factory.mktemp("replay")
    write_cache_file(
        root / "put_the_bowl_on_the_plate.hdf5",
        [("demo_0", _demo(10, 1)), ("demo_1", _demo(12, 2)), ("demo_10", _demo(11, 3))],
    )
    write_cache_file(root / "open_the_top_drawer.hdf5", [("demo_0", _demo(9, 4))])
    (root / "notes.txt").write_text("ignored")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model_dir = write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny", seed=0)
    policy = load_policy(model_dir, dtype=torch.float32, unnorm_key="libero_spatial")
    return OpenVLAOFTProcessor.from_model_dir(model_dir), policy.action_tokenizer


def test_files_and_sample_count(replay_dir):
    files = replay_files(replay_dir)
    assert [f.name for f in files] == ["open_the_top_drawer.hdf5", "put_the_bowl_on_the_plate.hdf5"]
    one = ReplayDataset(files, demos_per_task=1, num_action_chunks=8)
    assert len(one) == (9 - 8 + 1) + (10 - 8 + 1)  # T − C + 1 per demo, demo_0 of each file
    two = ReplayDataset(files, demos_per_task=2, num_action_chunks=8)  # lexicographic: demo_0, demo_1
    assert len(two) == 2 + 3 + (12 - 8 + 1)
    three = ReplayDataset(files, demos_per_task=3, num_action_chunks=8)  # + demo_10
    assert len(three) == len(two) + (11 - 8 + 1)
    assert len(ReplayDataset(files, demos_per_task=None, num_action_chunks=8)) == len(three)


def test_items(replay_dir):
    files = replay_files(replay_dir)
    dataset = ReplayDataset(files, demos_per_task=1, num_action_chunks=8, with_logits=True)
    descriptions = [dataset[i]["task_description"] for i in range(len(dataset))]
    assert descriptions == ["open the top drawer"] * 2 + ["put the bowl on the plate"] * 3
    item = dataset[3]  # file 2, demo_0 (seed 1), t = 1
    source = _demo(10, 1)
    np.testing.assert_array_equal(item["actions"], source.actions[1:9])
    np.testing.assert_array_equal(item["image"], source.images[1])
    np.testing.assert_array_equal(item["reference_logits"], source.processed_action_logits[1])
    assert item["image"].dtype == np.uint8 and item["actions"].shape == (8, 7)
    assert "reference_logits" not in ReplayDataset(files, num_action_chunks=8)[0]


def test_rank_sharding(replay_dir):
    files = replay_files(replay_dir)
    full = ReplayDataset(files, demos_per_task=3, num_action_chunks=8)
    shards = [ReplayDataset(files, demos_per_task=3, num_action_chunks=8, rank=r, world_size=3) for r in range(3)]
    for rank, shard in enumerate(shards):
        assert shard.samples == [ref for i, ref in enumerate(full.samples) if i % 3 == rank]
        assert shard.num_total == len(full)
    assert sum(len(s) for s in shards) == len(full)
    with pytest.raises(ValueError):
        ReplayDataset(files, rank=2, world_size=2)


def test_missing_directory_and_logits(tmp_path, replay_dir):
    with pytest.raises(ReplayDataError, match="vlacrl-precompute-logits"):
        replay_files(tmp_path / "nowhere")
    with pytest.raises(ReplayDataError, match="no .hdf5 files"):
        replay_files(tmp_path)
    write_cache_file(
        tmp_path / "a.hdf5", [("demo_0", Demo(np.zeros((9, 7), np.float32), np.zeros((9, 4, 4, 3), np.uint8)))]
    )
    with pytest.raises(ReplayDataError, match="processed_action_logits"):
        ReplayDataset([tmp_path / "a.hdf5"], with_logits=True)


def test_select_task_files(replay_dir, tmp_path):
    files = replay_files(replay_dir)
    assert [f.name for f in select_task_files(files, ["Open the top drawer"])] == ["open_the_top_drawer.hdf5"]
    prefixed = tmp_path / "KITCHEN_SCENE3_open_the_top_drawer_demo.hdf5"  # LIBERO-10 style scene prefix
    assert select_task_files([prefixed], ["open the top drawer"]) == [prefixed]
    with pytest.raises(ReplayDataError, match="no replay file"):
        select_task_files(files, ["close the microwave"])


def test_batch_sampler_order():
    sampler = CyclingBatchSampler(10, 3, seed=7)
    stream = iter(sampler)
    first_pass = [next(stream) for _ in range(3)]  # 10 // 3 batches, the last partial one dropped
    assert sorted(i for b in first_pass for i in b) == sorted(sampler.permutation(0)[:9])
    assert [next(stream) for _ in range(3)] == first_pass  # the reference's cycle: same order every pass
    reshuffled = iter(CyclingBatchSampler(10, 3, seed=7, reshuffle=True))
    passes = [[next(reshuffled) for _ in range(3)] for _ in range(2)]
    assert passes[0] == first_pass and passes[1] != passes[0]
    assert [next(iter(CyclingBatchSampler(10, 3, seed=7)))] == [first_pass[0]]  # seeded
    with pytest.raises(ReplayDataError, match="fewer than one micro-batch"):
        CyclingBatchSampler(2, 3)


def test_iterator_batches(replay_dir, tiny):
    processor, tokenizer = tiny
    dataset = ReplayDataset(replay_files(replay_dir), demos_per_task=1, num_action_chunks=8, with_logits=True)
    iterator = ReplayBatchIterator(dataset, ReplayCollator(processor, tokenizer), 2, seed=3)
    batches = [next(iterator) for _ in range(3)]  # 5 samples → 2 batches per pass; the 3rd cycles
    batch = batches[0]
    assert batch["input_ids"].shape == (2, 128) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].shape == (2, 128) and batch["attention_mask"].dtype == torch.bool
    assert batch["pixel_values"].shape == (2, 1, 6, 224, 224) and batch["pixel_values"].dtype == torch.float32
    assert batch["action_tokens"].shape == (2, 56)
    assert int(batch["action_tokens"].min()) >= 31744 and int(batch["action_tokens"].max()) < 32000
    assert batch["reference_logits"].shape == (2, 56, 256)
    torch.testing.assert_close(batch["action_tokens"], tokenizer.encode(batch["actions"]))
    torch.testing.assert_close(batches[2]["actions"], batches[0]["actions"])
    assert iterator.batches_drawn == 3
    # the images go through the processor as float tensors (no uint8 rounding after the resize)
    order = iterator.sampler.permutation(0)[:2]
    items = [dataset[i] for i in order]
    expected = processor(
        [s["task_description"] for s in items], torch.from_numpy(np.stack([s["image"] for s in items])).float()
    )
    torch.testing.assert_close(batch["pixel_values"], expected["pixel_values"])
    torch.testing.assert_close(batch["input_ids"], expected["input_ids"])


def test_iterator_with_worker_process(replay_dir, tiny):
    """DataLoader workers (fresh HDF5 handles per process) give exactly the in-process batches."""
    processor, tokenizer = tiny
    dataset = ReplayDataset(replay_files(replay_dir), demos_per_task=2, num_action_chunks=8)
    dataset[0]  # an open handle in the parent must not leak into the worker
    local = ReplayBatchIterator(dataset, ReplayCollator(processor, tokenizer), 4, seed=1)
    workers = ReplayBatchIterator(dataset, ReplayCollator(processor, tokenizer), 4, seed=1, num_workers=1)
    for _ in range(3):
        a, b = next(local), next(workers)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key])
