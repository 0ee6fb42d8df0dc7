"""Per-env episode bookkeeping: reward, dones and the reference's episode metrics (docs/algorithms.md).

Pure numpy over ``B`` envs, so every rule is unit-testable without a simulator.
"""

from __future__ import annotations

import numpy as np


class EpisodeTracker:
    """Tracks reward, success and length of the current episode of each of ``num_envs`` envs."""

    def __init__(self, num_envs: int, *, max_episode_steps: int, reward_coef: float = 5.0, use_rel_reward: bool = True):
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.reward_coef = reward_coef
        self.use_rel_reward = use_rel_reward
        self.prev_reward = np.zeros(num_envs)
        self.success_once = np.zeros(num_envs, dtype=bool)
        self.returns = np.zeros(num_envs)
        self.elapsed = np.zeros(num_envs, dtype=np.int64)

    def reset(self, env_idx: np.ndarray | None = None) -> None:
        """Start new episodes for ``env_idx`` (all envs when None)."""
        idx = slice(None) if env_idx is None else np.asarray(env_idx)
        self.prev_reward[idx] = 0.0
        self.success_once[idx] = False
        self.returns[idx] = 0.0
        self.elapsed[idx] = 0

    def step(self, terminations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Account one env step of every env.

        Args:
            terminations: [B] bool, the goal predicate after this step.
        Returns:
            reward [B] float32 (``coef * term`` minus its previous value when relative: +5 on the
            step success first holds, -5 if it is lost, 0 otherwise) and truncations [B] bool
            (``elapsed >= max_episode_steps``).
        """
        terminations = np.asarray(terminations, dtype=bool)
        self.elapsed += 1
        absolute = self.reward_coef * terminations
        reward = absolute - self.prev_reward if self.use_rel_reward else absolute
        self.prev_reward = absolute.astype(np.float64)
        self.returns += reward
        self.success_once |= terminations
        truncations = self.elapsed >= self.max_episode_steps
        return reward.astype(np.float32), truncations

    def episode_info(self, task_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The reference's ``infos["episode"]``: one value per env, [B] each.

        Keys: ``success_once``, ``return``, ``episode_len``, ``reward`` (= return / episode_len),
        ``task_id`` and ``task_<k>_success`` for every task k present (success_once on that task's
        envs, False elsewhere).
        """
        task_ids = np.asarray(task_ids)
        info = {f"task_{int(k)}_success": self.success_once & (task_ids == k) for k in np.unique(task_ids)}
        length = self.elapsed.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_reward = np.where(length > 0, self.returns / np.maximum(length, 1), 0.0)
        info.update(
            task_id=task_ids.astype(np.int64).copy(),
            success_once=self.success_once.copy(),
            **{"return": self.returns.astype(np.float32).copy()},
            episode_len=self.elapsed.copy(),
            reward=mean_reward.astype(np.float32),
        )
        return info
