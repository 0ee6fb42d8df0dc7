"""Vectorised sub-process envs: parity with serial envs, reconfiguration, videos, crashes, bad input."""

import os
import signal
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from vlacrl.envs.errors import EnvConfigError, EnvWorkerError
from vlacrl.envs.libero.sim import SimConfig
from vlacrl.envs.libero.vector_env import LiberoVectorEnv
from vlacrl.envs.vector_env import VectorEnvConfig
from vlacrl.envs.video import VideoConfig

pytestmark = pytest.mark.libero


def _config(**kw) -> VectorEnvConfig:
    base = dict(num_envs=2, group_size=1, task_ids=[0, 1], mode="eval", sim=SimConfig(max_episode_steps=32))
    base.update(kw)
    return VectorEnvConfig(**base)


def _rollout(env: LiberoVectorEnv, chunks: np.ndarray):
    first = env.start_epoch()
    steps = [env.chunk_step(c) for c in chunks]
    return first, steps


def test_subprocess_envs_match_serial_envs_and_write_a_video(tmp_path):
    chunks = np.random.default_rng(1).uniform(-1, 1, size=(2, 2, 8, 7))
    video = VideoConfig(save_video=True, video_base_dir=str(tmp_path))
    with LiberoVectorEnv(_config(num_processes=2, video=video)) as parallel:
        pids = list(parallel.pool.pids)
        first_p, steps_p = _rollout(parallel, chunks)
        for pid in pids:  # sims get task specs and init states from here, so never import torch (~500 MB each)
            assert "libtorch" not in Path(f"/proc/{pid}/maps").read_text()
        parallel.finish_epoch(video_name="epoch0")
        # Reconfigure env 0 to task 1 (trial 3) without restarting its process.
        obs = parallel.reset(np.array([0]), np.array([50 + 3]))
        assert parallel.pool.pids == pids and parallel.task_ids.tolist() == [1, 1]
        assert obs["task_descriptions"][0] == obs["task_descriptions"][1]
    with LiberoVectorEnv(_config(in_process=True)) as serial:
        first_s, steps_s = _rollout(serial, chunks)
    assert first_p["task_descriptions"] == first_s["task_descriptions"]
    np.testing.assert_array_equal(first_p["full_image"], first_s["full_image"])
    for (obs_p, rew_p, term_p, _, _), (obs_s, rew_s, term_s, _, _) in zip(steps_p, steps_s):
        np.testing.assert_array_equal(obs_p["full_image"], obs_s["full_image"])
        np.testing.assert_array_equal(obs_p["state"], obs_s["state"])
        np.testing.assert_array_equal(rew_p, rew_s)
        np.testing.assert_array_equal(term_p, term_s)
        assert rew_p.shape == (2, 8) and term_p.dtype == bool
    frames = imageio.mimread(tmp_path / "rank_0" / "epoch0.mp4")
    assert len(frames) == 16 and frames[0].shape == (256, 512, 3)  # 2 chunks x 8 steps, 2 envs tiled


def test_a_killed_subprocess_raises_a_clear_error_naming_the_env():
    # No restart allowed: the crash is an error (restarts are tested in test_env_restart.py).
    with LiberoVectorEnv(_config(num_processes=2, max_restarts=0)) as env:
        env.start_epoch()
        os.kill(env.pool.pids[1], signal.SIGKILL)
        with pytest.raises(EnvWorkerError, match=r"LIBERO env 1 failed: .*died with exit code -9 \(SIGKILL\)") as info:
            env.chunk_step(np.zeros((2, 8, 7)))
        assert info.value.env_index == 1


def test_truncation_and_eval_semantics_collapse_flags_onto_the_last_substep():
    config = _config(in_process=True, num_envs=1, task_ids=[0], ignore_terminations=True, auto_reset=True,
                     sim=SimConfig(max_episode_steps=16))  # fmt: skip
    with LiberoVectorEnv(config) as env:
        env.start_epoch()
        _, _, terms, truncs, infos = env.chunk_step(np.zeros((1, 8, 7)))
        assert not truncs.any() and not terms.any()
        _, _, terms, truncs, infos = env.chunk_step(np.zeros((1, 8, 7)))
        np.testing.assert_array_equal(truncs[0], [False] * 7 + [True])
        assert infos["_final_info"].tolist() == [True]
        final = infos["final_info"]["episode"]
        assert final["episode_len"][0] == 16 and "success_at_end" in final
        assert env.tracker.elapsed[0] == 0  # auto-reset started a new episode


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(sim=SimConfig(suite="libero_100")), "unknown LIBERO suite"),
        (dict(task_ids=[0, 12]), "out of range"),
        (dict(num_envs=6, group_size=4), "multiple of group_size"),
        (dict(task_ids=[]), "at least one task"),
    ],
)
def test_bad_input_is_rejected_before_any_process_starts(overrides, message):
    with pytest.raises(EnvConfigError, match=message):
        LiberoVectorEnv(_config(**overrides))


def test_wrong_action_shape_is_rejected():
    with LiberoVectorEnv(_config(in_process=True, num_envs=1, task_ids=[0])) as env:
        env.start_epoch()
        with pytest.raises(EnvConfigError, match=r"actions must be \[1, C, 7\]"):
            env.chunk_step(np.zeros((1, 8, 6)))
