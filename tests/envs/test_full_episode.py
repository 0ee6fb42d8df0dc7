"""A reference-length training episode (512 steps = 64 chunks) in sub-process envs."""

import numpy as np
import pytest

from vlacrl.envs.libero.vector_env import LiberoVectorEnv
from vlacrl.envs.vector_env import VectorEnvConfig

pytestmark = [pytest.mark.libero, pytest.mark.slow]


def test_training_episode_runs_512_steps_and_truncates_on_the_last_substep():
    config = VectorEnvConfig(num_envs=2, group_size=2, task_ids=[0], num_processes=2)
    rng = np.random.default_rng(0)
    with LiberoVectorEnv(config) as env:
        first = env.start_epoch()
        assert env.trial_ids[0] == env.trial_ids[1]  # one GRPO group shares its init state
        np.testing.assert_array_equal(first["full_image"][0], first["full_image"][1])
        truncs = []
        for _ in range(64):
            _, rewards, _, trunc, infos = env.chunk_step(rng.uniform(-0.3, 0.3, size=(2, 8, 7)))
            truncs.append(trunc)
        truncs = np.concatenate(truncs, axis=1)  # [2, 512]
        assert truncs[:, -1].all() and not truncs[:, :-1].any()
        assert infos["episode"]["episode_len"].tolist() == [512, 512]
        assert rewards.shape == (2, 8)
        env.finish_epoch()
        before = env.reset_state_ids.copy()
        assert before.shape == (2,) and before[0] == before[1]
