"""iRe-VLA's D_RL: every successful RL episode, whole (all its valid chunk steps), for Stage 2's supervision.

An episode is a trajectory column m of the actor-layout rollout batch; it succeeded when its reward over the
valid steps (the loss mask: up to and including the first done) is positive (:func:`success_from_rewards`;
LIBERO gives +5 on the step the goal first holds and the episode ends there). Its valid steps are stored as
rows ``input_ids`` [L], ``attention_mask`` [L], ``pixel_values`` [N_img, 6, 224, 224], ``action_tokens`` [C, D]
(the sampled tokens, the Stage-2 targets).

Size: at most ``crl.d_rl_max_samples`` rows per actor rank [INF] (null = unbounded); beyond it, uniformly
random whole episodes are evicted until the rest fits (so D_RL stays a uniform sample of all successes).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from vlacrl.algorithms.masks import trajectory_rewards
from vlacrl.crl.crl_vla import samples as S
from vlacrl.models.inputs import MODEL_INPUT_KEYS

EPISODE_KEYS = MODEL_INPUT_KEYS


def success_from_rewards(rewards: torch.Tensor, loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """rewards [N, M, C], loss_mask [N, M, C] or None → per-episode success [M] bool (valid-step reward > 0)."""
    return trajectory_rewards(rewards.float(), loss_mask) > 0


def valid_steps(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """[N, M] bool: the chunk steps of each column that count (any valid sub-step in ``loss_mask``; all if absent)."""
    n, m = batch["input_ids"].shape[:2]
    mask = batch.get("valid_mask", batch.get("loss_mask"))  # valid_mask: before the GRPO group filter
    return torch.ones(n, m, dtype=torch.bool) if mask is None else mask.bool().any(dim=-1).cpu()


class SuccessBuffer(S.FileBacked):
    """D_RL; see the module docstring. ``episodes[i]`` is ``{key: [T_i, …]}`` of task ``task_ids[i]``."""

    def __init__(self, max_samples: int | None = None, seed: int = 0):
        self.max_samples = None if max_samples is None else int(max_samples)
        self.episodes: list[S.Samples] = []
        self.task_ids: list[int] = []
        self.generator = torch.Generator().manual_seed(int(seed))
        self._flat: S.Samples | None = None

    def __len__(self) -> int:
        """Number of stored rows (chunk steps)."""
        return sum(S.num_samples(e) for e in self.episodes)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def add_episodes(self, batch: Mapping[str, torch.Tensor], success: torch.Tensor, task_id: int = -1) -> int:
        """Store the valid steps of every column m with ``success[m]``; returns the number of episodes added.

        batch: actor layout ``{key: [N, M, …]}`` with :data:`EPISODE_KEYS` (and optionally ``loss_mask``
        [N, M, C]); success: [M] bool.
        """
        steps = valid_steps(batch)
        columns = torch.nonzero(success.bool().cpu()).squeeze(-1).tolist()
        for m in columns:
            index = torch.nonzero(steps[:, m]).squeeze(-1)
            episode = {k: batch[k][index.to(batch[k].device), m].detach().cpu().clone() for k in EPISODE_KEYS}
            self.episodes.append(episode)
            self.task_ids.append(int(task_id))
        self._evict()
        self._flat = None
        return len(columns)

    def _evict(self) -> None:
        while self.max_samples is not None and len(self) > self.max_samples and self.episodes:
            drop = int(torch.randint(len(self.episodes), (1,), generator=self.generator))
            del self.episodes[drop], self.task_ids[drop]

    def all_samples(self) -> S.Samples:
        """Every row, episodes in order, plus ``episode`` [n] int64 (index into :attr:`episodes`)."""
        if self._flat is None:
            self._flat = S.concat(self.episodes)
            if self._flat:
                sizes = torch.tensor([S.num_samples(e) for e in self.episodes])
                self._flat["episode"] = torch.repeat_interleave(torch.arange(len(self.episodes)), sizes)
        return self._flat

    def sample(self, count: int, generator: torch.Generator | None = None) -> S.Samples | None:
        """``count`` rows, uniform over all stored rows (without replacement when possible); None when empty."""
        size = len(self)
        if size == 0 or count <= 0:
            return None
        gen = generator or self.generator
        index = (
            torch.randperm(size, generator=gen)[:count]
            if count <= size
            else torch.randint(size, (count,), generator=gen)
        )
        return S.take(self.all_samples(), index)

    def shard(self, rank: int, world_size: int) -> SuccessBuffer:
        """Episodes ``i % world_size == rank`` (whole episodes; disjoint over ranks)."""
        out = SuccessBuffer(self.max_samples)
        for i in S.shard_index(len(self.episodes), rank, world_size).tolist():
            out.episodes.append(self.episodes[i])
            out.task_ids.append(self.task_ids[i])
        return out

    @classmethod
    def merge(cls, buffers: Sequence[SuccessBuffer], max_samples: int | None = None) -> SuccessBuffer:
        out = cls(max_samples)
        for buffer in buffers:
            out.episodes.extend(buffer.episodes)
            out.task_ids.extend(buffer.task_ids)
        return out

    # -------------------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {"max_samples": self.max_samples, "task_ids": list(self.task_ids), "episodes": list(self.episodes)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.max_samples = state.get("max_samples")
        self.task_ids = [int(t) for t in state["task_ids"]]
        self.episodes = [dict(e) for e in state["episodes"]]
        self._flat = None
