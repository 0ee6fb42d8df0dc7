"""Which init state each env starts from (docs/libero.md), reproduced exactly.

Reset-state ids index the concatenation of the selected tasks' init states: for tasks
``[t0, t1, ...]`` with ``n0, n1, ...`` states, ids ``[0, n0)`` are task t0's trials, and so on.

* Training (ordered): one permutation of all ids from ``default_rng(0)`` (identical on every
  rank), truncated to a multiple of the world size and split into one row per rank. Each epoch
  takes the next ``num_group`` ids of the rank's row (re-permuting with the same generator when
  the row is used up); each id is repeated ``group_size`` times so that the envs of one GRPO group
  share their init state.
* Evaluation: per task, ``num_envs * world_size / num_tasks`` states drawn with replacement from
  ``default_rng(seed + rank)``; each task's draws are split evenly across ranks. A new draw is made
  for every evaluation epoch.
* Random (``use_ordered_reset_state_ids=False``): ``num_group`` uniform ids from
  ``default_rng(seed + rank)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlacrl.envs.errors import EnvConfigError


@dataclass(frozen=True)
class ResetStateSpace:
    """The id space over the selected tasks' init states."""

    task_ids: tuple[int, ...]
    trial_counts: tuple[int, ...]  # number of init states of each selected task

    @property
    def size(self) -> int:
        return int(sum(self.trial_counts))

    @property
    def offsets(self) -> np.ndarray:
        """First id of each task, [num_tasks]."""
        return np.concatenate([[0], np.cumsum(self.trial_counts)[:-1]]).astype(np.int64)

    def to_task_trial(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map ids [K] to (task ids [K], trial ids [K])."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise EnvConfigError(f"reset-state ids must lie in [0, {self.size}), got {ids}")
        slot = np.searchsorted(np.cumsum(self.trial_counts), ids, side="right")
        return np.asarray(self.task_ids, dtype=np.int64)[slot], ids - self.offsets[slot]


class ResetStateSampler:
    """Yields the reset-state ids (one per env, [num_envs]) of each epoch for one rank."""

    def __init__(
        self,
        space: ResetStateSpace,
        num_group: int,
        group_size: int,
        *,
        mode: str,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if mode not in ("train", "eval", "random"):
            raise EnvConfigError(f"unknown reset-state mode {mode!r}")
        if not 0 <= rank < world_size:
            raise EnvConfigError(f"rank {rank} outside world size {world_size}")
        self.space, self.num_group, self.group_size = space, num_group, group_size
        self.mode, self.rank, self.world_size = mode, rank, world_size
        self._ordered_rng = np.random.default_rng(seed=0)
        self._rng = np.random.default_rng(seed=seed + rank)
        self._rows = self._new_rows() if mode != "random" else None
        self._start = 0

    def _new_rows(self) -> np.ndarray:
        return self._train_rows() if self.mode == "train" else self._eval_rows()

    def _train_rows(self) -> np.ndarray:
        ids = np.arange(self.space.size)
        self._ordered_rng.shuffle(ids)
        valid = len(ids) - len(ids) % self.world_size
        rows = ids[:valid].reshape(self.world_size, -1)
        if rows.shape[1] < self.num_group:
            raise EnvConfigError(
                f"{self.num_group} GRPO groups per rank need at least {self.num_group * self.world_size} "
                f"init states, but the selected tasks have {self.space.size}"
            )
        return rows

    def _eval_rows(self) -> np.ndarray:
        num_tasks = len(self.space.task_ids)
        total_envs = self.num_group * self.world_size
        if total_envs % num_tasks or (total_envs // num_tasks) % self.world_size:
            raise EnvConfigError(
                f"evaluation needs num_envs x world_size ({total_envs}) divisible by the number of tasks "
                f"({num_tasks}) and the per-task count divisible by the world size ({self.world_size})"
            )
        per_task = total_envs // num_tasks
        per_rank = per_task // self.world_size
        draws = np.stack(
            [
                offset + self._rng.choice(count, size=per_task, replace=True)
                for offset, count in zip(self.space.offsets, self.space.trial_counts)
            ]
        )  # [num_tasks, per_task]
        return np.stack([draws[:, r * per_rank : (r + 1) * per_rank].reshape(-1) for r in range(self.world_size)])

    def random_ids(self, count: int) -> np.ndarray:
        """``count`` uniform ids from this rank's generator (resets without fixed ids)."""
        return self._rng.integers(0, self.space.size, size=count)

    def next_ids(self) -> np.ndarray:
        """Ids for the next epoch, each repeated ``group_size`` times: [num_group * group_size]."""
        if self.mode == "random":
            ids = self.random_ids(self.num_group)
        else:
            if self._start + self.num_group > self._rows.shape[1]:
                self._rows = self._new_rows()
                self._start = 0
            ids = self._rows[self.rank, self._start : self._start + self.num_group]
            self._start += self.num_group
        return np.repeat(np.asarray(ids, dtype=np.int64), self.group_size)

    def state_dict(self) -> dict:
        """Everything needed to continue the same id sequence after a restart."""
        return {
            "ordered_rng": self._ordered_rng.bit_generator.state,
            "rng": self._rng.bit_generator.state,
            "rows": None if self._rows is None else self._rows.tolist(),
            "start": self._start,
        }

    def load_state_dict(self, state: dict) -> None:
        self._ordered_rng.bit_generator.state = state["ordered_rng"]
        self._rng.bit_generator.state = state["rng"]
        self._rows = None if state["rows"] is None else np.asarray(state["rows"], dtype=np.int64)
        self._start = int(state["start"])
