"""Sim sub-processes killed with SIGKILL (real processes, real signals) are restarted and replayed."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from vlacrl.envs.errors import EnvWorkerError
from vlacrl.envs.libero.render import render_env_for_subprocess
from vlacrl.envs.libero.setup import ensure_libero_ready
from vlacrl.envs.libero.sim import SimConfig
from vlacrl.envs.libero.simulator import SIM_FACTORY
from vlacrl.envs.libero.vector_env import LiberoVectorEnv
from vlacrl.envs.sim_pool import SubprocSimPool
from vlacrl.envs.vector_env import VectorEnvConfig

pytestmark = pytest.mark.libero
SIM = SimConfig(max_episode_steps=16, image_size=128)  # 2 chunks of 8 per epoch


def _config(max_restarts: int) -> VectorEnvConfig:
    """Two envs in two processes, one GRPO group: both start from the same init state."""
    return VectorEnvConfig(
        num_envs=2, group_size=2, task_ids=[0], mode="train", num_processes=2, max_restarts=max_restarts, sim=SIM
    )


def _same_actions(rng: np.random.Generator) -> np.ndarray:
    """One random chunk [2, 8, 7] given to both envs."""
    return np.repeat(rng.uniform(-1, 1, size=(1, 8, 7)), 2, axis=0)


def _kill(env: LiberoVectorEnv, env_index: int) -> int:
    pid = env.sim_pids[env_index]
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_killed_sim_mid_epoch_is_restarted_and_its_episode_replayed_exactly(caplog):
    rng = np.random.default_rng(0)
    with LiberoVectorEnv(_config(max_restarts=2)) as env:
        first = env.start_epoch()
        assert env.task_ids.tolist() == [0, 0] and env.trial_ids[0] == env.trial_ids[1]
        np.testing.assert_array_equal(first["full_image"][0], first["full_image"][1])
        env.chunk_step(_same_actions(rng))
        survivor = env.sim_pids[0]
        killed = _kill(env, 1)
        obs, rewards, terms, truncs, infos = env.chunk_step(_same_actions(rng))

        assert env.restarts == 1
        assert env.sim_pids[0] == survivor and env.sim_pids[1] != killed
        assert obs["full_image"].shape == (2, 128, 128, 3) and obs["state"].shape == (2, 8)
        assert rewards.shape == terms.shape == truncs.shape == (2, 8)
        assert infos["episode"]["episode_len"].tolist() == [16, 16] and truncs[:, -1].all()
        # The restarted env replayed its first chunk and then ran the second: it ends exactly where
        # its twin (same init state, same actions, never killed) does.
        assert obs["full_image"][1].std() > 10  # a real scene
        np.testing.assert_array_equal(obs["full_image"][1], obs["full_image"][0])
        np.testing.assert_array_equal(obs["state"][1], obs["state"][0])
        np.testing.assert_array_equal(rewards[1], rewards[0])
        assert "restarting its sim process (restart 1 of 2 this epoch)" in caplog.text
        assert "differs from the original" not in caplog.text  # the replay check saw the same state
        env.finish_epoch()


def test_restarts_are_bounded_per_epoch_then_the_error_names_env_task_and_signal():
    rng = np.random.default_rng(1)
    with LiberoVectorEnv(_config(max_restarts=1)) as env:
        env.start_epoch()
        env.chunk_step(_same_actions(rng))
        _kill(env, 1)
        env.chunk_step(_same_actions(rng))  # the epoch's one restart
        assert env.restarts == 1
        env.finish_epoch()

        _kill(env, 1)
        obs = env.start_epoch()  # a new epoch, a new budget: the reset restarts the process
        assert env.restarts == 2
        np.testing.assert_array_equal(obs["full_image"][1], obs["full_image"][0])

        _kill(env, 1)
        pattern = (
            r"LIBERO env 1 failed: its sub-process \(pid \d+, envs \[1\]\) died with exit code -9 \(SIGKILL\) "
            r"\[during step_chunk on task 0 of libero_spatial; gave up after 1 restart\(s\) .*max_env_restarts=1\]"
        )
        with pytest.raises(EnvWorkerError, match=pattern) as info:
            env.chunk_step(_same_actions(rng))
        assert info.value.env_index == 1 and env.restarts == 2


def test_pool_reports_an_exception_in_a_sim_process_and_restarts_it():
    ensure_libero_ready()
    pool = SubprocSimPool(SIM, [0], 1, render_env_for_subprocess(None), factory=SIM_FACTORY, label="LIBERO")
    try:
        old = pool.pids[0]
        results, failures = pool.call_collect("no_such_method", {0: ()})
        assert results == {} and len(failures) == 1
        assert failures[0].env_index == 0 and "AttributeError" in failures[0].cause
        assert pool.restart(0, [0]) is None and pool.pids[0] != old
        obs = pool.call("reset", {0: (3, 0)})[0]
        assert obs["full_image"].shape == (128, 128, 3)
    finally:
        pool.close()
