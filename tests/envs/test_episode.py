"""Reward, dones and episode metrics (docs/algorithms.md) on hand-made termination sequences."""

import numpy as np

from vlacrl.envs.episode import EpisodeTracker


def run(tracker, terms):
    rewards, truncs = zip(*(tracker.step(np.array(t)) for t in terms))
    return np.stack(rewards, 1), np.stack(truncs, 1)


def test_relative_reward_is_plus_five_once_then_minus_on_loss():
    tracker = EpisodeTracker(3, max_episode_steps=10)
    terms = [[0, 0, 1], [1, 0, 1], [1, 0, 0], [0, 0, 1]]
    rewards, truncs = run(tracker, terms)
    np.testing.assert_array_equal(rewards[0], [0, 5, 0, -5])  # success at step 2, lost at step 4
    np.testing.assert_array_equal(rewards[1], [0, 0, 0, 0])
    np.testing.assert_array_equal(rewards[2], [5, 0, -5, 5])  # regained -> +5 again
    assert not truncs.any()
    np.testing.assert_array_equal(tracker.success_once, [True, False, True])
    np.testing.assert_array_equal(tracker.returns, [0, 0, 5])


def test_absolute_reward_and_truncation_at_max_steps():
    tracker = EpisodeTracker(1, max_episode_steps=3, reward_coef=2.0, use_rel_reward=False)
    rewards, truncs = run(tracker, [[1], [1], [0], [0]])
    np.testing.assert_array_equal(rewards[0], [2, 2, 0, 0])
    np.testing.assert_array_equal(truncs[0], [False, False, True, True])


def test_episode_info_keys_and_values():
    tracker = EpisodeTracker(4, max_episode_steps=512)
    run(tracker, [[1, 0, 0, 1], [1, 0, 0, 1]])
    info = tracker.episode_info(np.array([3, 3, 7, 7]))
    expected = {"task_3_success", "task_7_success", "task_id", "success_once", "return", "episode_len", "reward"}
    assert set(info) == expected
    np.testing.assert_array_equal(info["task_3_success"], [True, False, False, False])
    np.testing.assert_array_equal(info["task_7_success"], [False, False, False, True])
    np.testing.assert_array_equal(info["episode_len"], [2, 2, 2, 2])
    np.testing.assert_allclose(info["reward"], [2.5, 0, 0, 2.5])  # return 5 over 2 steps
    np.testing.assert_array_equal(info["task_id"], [3, 3, 7, 7])


def test_reset_clears_only_selected_envs():
    tracker = EpisodeTracker(2, max_episode_steps=512)
    run(tracker, [[1, 1]])
    tracker.reset(np.array([1]))
    np.testing.assert_array_equal(tracker.success_once, [True, False])
    np.testing.assert_array_equal(tracker.elapsed, [1, 0])
    rewards, _ = run(tracker, [[1, 1]])
    np.testing.assert_array_equal(rewards[:, 0], [0, 5])  # env 1 starts a fresh episode
