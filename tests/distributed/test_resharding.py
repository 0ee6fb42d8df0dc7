"""Env → rollout → actor pairing when the world sizes differ, and the env-axis cut and join of rollout batches."""

from __future__ import annotations

import pytest
import torch

from vlacrl.algorithms.layout import concat_env_ranges, slice_env_range
from vlacrl.distributed.resharding import ActorShard, ReshardError, actor_shards, rollout_rank_of_env


def rollout_batch(envs: list[int], epochs: int = 2, steps: int = 3) -> dict[str, torch.Tensor]:
    """A rollout-layout batch whose values name their env: step tensors [E·N, b, 2], env_info [E·b]."""
    ids = torch.tensor(envs, dtype=torch.float32)
    steps_tensor = ids.view(1, -1, 1).expand(epochs * steps, -1, 2) + torch.arange(epochs * steps).view(-1, 1, 1) * 100
    info = (ids.view(1, -1) + torch.arange(epochs).view(-1, 1) * 1000).reshape(-1)
    return {"rewards": steps_tensor.clone(), "env_info/success_once": info}


def test_rollout_rank_of_env():
    assert [rollout_rank_of_env(e, 4, 2) for e in range(4)] == [0, 0, 1, 1]
    assert [rollout_rank_of_env(e, 3, 3) for e in range(3)] == [0, 1, 2]
    with pytest.raises(ReshardError, match="3 env workers cannot be shared evenly by 2"):
        rollout_rank_of_env(0, 3, 2)


def test_actor_shards_cover_every_env_once_in_order():
    assert actor_shards(16, 2, 1, 4) == [ActorShard((0, 1), 0, 16)]
    assert actor_shards(16, 2, 2, 4) == [ActorShard((0,), 0, 8), ActorShard((1,), 0, 8)]
    assert actor_shards(16, 1, 2, 4) == [ActorShard((0,), 0, 8), ActorShard((0,), 8, 16)]
    assert actor_shards(24, 4, 3, 2) == [ActorShard((0, 1), 0, 8), ActorShard((1, 2), 2, 10), ActorShard((2, 3), 4, 12)]
    with pytest.raises(ReshardError, match="3 GRPO groups of 4 envs cannot be split evenly over 2 actor ranks"):
        actor_shards(12, 1, 2, 4)


def test_concat_then_slice_equals_one_worker():
    whole = rollout_batch(list(range(6)))
    parts = [rollout_batch([0, 1]), rollout_batch([2, 3]), rollout_batch([4, 5])]
    joined = concat_env_ranges(parts)
    for key in whole:
        assert torch.equal(joined[key], whole[key]), key
    middle = slice_env_range(joined, 1, 4)
    expected = rollout_batch([1, 2, 3])
    for key in whole:
        assert torch.equal(middle[key], expected[key]), key


@pytest.mark.parametrize("rollout_world,actor_world", [(1, 1), (2, 1), (4, 2), (2, 4), (4, 3)])
def test_shards_reassemble_the_global_batch(rollout_world, actor_world):
    """Every actor rank's cut, joined in rank order, is the batch one worker holding all 24 envs would send."""
    per_rollout = 24 // rollout_world
    batches = [rollout_batch(list(range(r * per_rollout, (r + 1) * per_rollout))) for r in range(rollout_world)]
    cuts = []
    for shard in actor_shards(24, rollout_world, actor_world, group_size=2):
        cut = slice_env_range(concat_env_ranges([batches[r] for r in shard.sources]), shard.start, shard.stop)
        assert cut["rewards"].shape[1] == 24 // actor_world
        cuts.append(cut)
    whole = rollout_batch(list(range(24)))
    rejoined = concat_env_ranges(cuts)
    for key in whole:
        assert torch.equal(rejoined[key], whole[key]), key
