"""The reference's random-action evaluation baseline (``rollout.random_action``): the rollout worker answers
evaluation batches with the fixed 7-action cycle, whatever the observation, and training with the policy."""

from types import SimpleNamespace

import numpy as np
import torch
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.envs.libero.convert import model_to_env_actions
from vlacrl.models.openvla_oft import write_tiny_checkpoint
from vlacrl.workers.fixed_actions import CYCLE, FixedActionCycle
from vlacrl.workers.rollout_worker import RolloutWorker


def env_batch(n: int, seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    obs = {"task_descriptions": ["pick up the black bowl"] * n,
           "full_image": rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)}  # fmt: skip
    return SimpleNamespace(obs=obs, rewards=None, dones=np.zeros((n, 8), dtype=bool))


def test_the_cycle_is_the_references_and_continues_across_epochs():
    cycle = FixedActionCycle(chunk_len=8)
    got = [cycle.next(3) for _ in range(9)]
    assert all(a.shape == (3, 8, 7) for a in got)
    for step, actions in enumerate(got):
        np.testing.assert_array_equal(actions, np.broadcast_to(CYCLE[step % 7], (3, 8, 7)))
    assert CYCLE[0].tolist() == [0.5, 0, 0, 0, 0, 0, 0] and CYCLE[6].tolist() == [0, 0, 0, 0, 0, 0, 1.0]
    assert model_to_env_actions(CYCLE)[:, 6].tolist() == [1.0] * 6 + [-1.0]  # close, ..., then open (LIBERO)


def test_the_rollout_worker_acts_with_the_cycle_only_in_evaluation(tmp_path):
    tiny_model_dir = write_tiny_checkpoint(tmp_path / "tiny", seed=0)
    cfg = OmegaConf.to_container(compose("cpu_tiny", [f"actor.checkpoint_load_path={tiny_model_dir}",
                                                      "rollout.random_action=True"]), resolve=True)  # fmt: skip
    worker = RolloutWorker(cfg, rank=0, world_size=1)
    first, second = worker.act(0, env_batch(2, 0), "eval"), worker.act(0, env_batch(2, 1), "eval")
    np.testing.assert_array_equal(first, np.broadcast_to(CYCLE[0], (2, 8, 7)))
    np.testing.assert_array_equal(second, np.broadcast_to(CYCLE[1], (2, 8, 7)))
    trained = worker.act(0, env_batch(2, 2), "train")
    assert trained.shape == (2, 8, 7) and not np.allclose(trained, CYCLE[2])
    assert worker.collect()["action_tokens"].shape[-2:] == torch.Size([8, 7])
