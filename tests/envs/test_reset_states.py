"""Init-state selection exactly as the reference (docs/libero.md)."""

import numpy as np
import pytest

from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.reset_states import ResetStateSampler, ResetStateSpace

SPACE = ResetStateSpace(task_ids=(4, 7), trial_counts=(3, 5))  # ids 0-2 -> task 4, 3-7 -> task 7


def test_ids_map_to_task_and_trial():
    tasks, trials = SPACE.to_task_trial(np.array([0, 2, 3, 7]))
    np.testing.assert_array_equal(tasks, [4, 4, 7, 7])
    np.testing.assert_array_equal(trials, [0, 2, 0, 4])
    with pytest.raises(EnvConfigError):
        SPACE.to_task_trial(np.array([8]))


def test_train_ids_follow_the_seed0_permutation_in_groups():
    space = ResetStateSpace((0,), (50,))
    sampler = ResetStateSampler(space, num_group=4, group_size=8, mode="train", world_size=2, rank=1)
    expected = np.arange(50)
    np.random.default_rng(seed=0).shuffle(expected)
    row = expected[:50].reshape(2, 25)[1]
    first, second = sampler.next_ids(), sampler.next_ids()
    np.testing.assert_array_equal(first, np.repeat(row[:4], 8))  # each init state fills one GRPO group
    np.testing.assert_array_equal(second, np.repeat(row[4:8], 8))


def test_train_row_is_redrawn_from_the_same_generator_when_used_up():
    space = ResetStateSpace((0,), (6,))
    sampler = ResetStateSampler(space, num_group=4, group_size=1, mode="train")
    rng = np.random.default_rng(seed=0)
    perm1, perm2 = np.arange(6), np.arange(6)
    rng.shuffle(perm1)
    rng.shuffle(perm2)
    np.testing.assert_array_equal(sampler.next_ids(), perm1[:4])
    np.testing.assert_array_equal(sampler.next_ids(), perm2[:4])  # 4 + 4 > 6: a new permutation


def test_train_rows_of_ranks_are_disjoint():
    space = ResetStateSpace((0, 1), (50, 50))
    ids = [ResetStateSampler(space, 8, 1, mode="train", rank=r, world_size=4).next_ids() for r in range(4)]
    assert len(set(np.concatenate(ids).tolist())) == 32


def test_eval_draws_per_task_with_replacement_and_splits_across_ranks():
    space = ResetStateSpace((0, 1), (50, 50))
    world = 2
    ids = ResetStateSampler(space, num_group=8, group_size=1, mode="eval", seed=0, rank=1, world_size=world).next_ids()
    rng = np.random.default_rng(seed=0 + 1)  # rank 1's generator
    draws = [offset + rng.choice(50, size=8, replace=True) for offset in (0, 50)]  # 8 per task in total
    np.testing.assert_array_equal(ids, np.concatenate([d[4:8] for d in draws]))  # rank 1's half of each
    tasks, _ = space.to_task_trial(ids)
    np.testing.assert_array_equal(np.bincount(tasks), [4, 4])


def test_eval_redraws_every_epoch():
    space = ResetStateSpace((0,), (50,))
    sampler = ResetStateSampler(space, num_group=8, group_size=1, mode="eval")
    assert not np.array_equal(sampler.next_ids(), sampler.next_ids())


def test_eval_rejects_sizes_that_do_not_split():
    with pytest.raises(EnvConfigError, match="divisible"):
        ResetStateSampler(ResetStateSpace((0, 1, 2), (50, 50, 50)), 8, 1, mode="eval")


def test_too_few_states_for_the_groups_is_an_error():
    with pytest.raises(EnvConfigError, match="init states"):
        ResetStateSampler(ResetStateSpace((0,), (5,)), num_group=8, group_size=1, mode="train")


def test_state_dict_round_trip_continues_the_sequence():
    space = ResetStateSpace((0,), (50,))
    a = ResetStateSampler(space, 4, 2, mode="train")
    a.next_ids()
    b = ResetStateSampler(space, 4, 2, mode="train")
    b.load_state_dict(a.state_dict())
    for _ in range(20):
        np.testing.assert_array_equal(a.next_ids(), b.next_ids())
