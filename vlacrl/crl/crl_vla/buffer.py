"""CRL-VLA's old-task buffer B_old and the reservoir that picks each task's samples.

During a task, every valid rollout sample (one chunk step: prompt, image, action tokens, MC return) is offered
to a :class:`Reservoir` of ``crl.b_old_per_task`` slots (Algorithm R: a uniform random subset of everything
the rank saw during the task). At the task boundary the reservoir's samples become the task's part of
:class:`OldTaskBuffer`, and then *every* row of B_old, old tasks included, is relabelled (:meth:`relabel`) with
the current policy's action logits (π_old) and the new frozen critic's values (V_old): Algorithm 1 replaces
π_old by the policy at the end of the previous task, and V_old must come from the frozen head the anchor uses
(docs/methods/crl_vla.md, "B_old and the task boundary").

B_old is cumulative over tasks; its size is capped at ``crl.b_old_capacity`` samples per actor rank [INF]:
when a new task would exceed it, every task is cut to an equal share ``capacity // #tasks`` (its first rows,
which are a uniform random subset because the reservoir is shuffled when read).

Row keys: ``input_ids`` [L] int64, ``attention_mask`` [L] bool, ``pixel_values`` [N_img, 6, 224, 224],
``action_tokens`` [C, D] int64, ``returns`` [] float32 (MC return G), ``old_logits`` [56, 256] float32
(untempered action-id logits), ``old_values`` [] float32 (V_old, or Q_old for the Q critic); B_old adds
``task_id`` [] int64 when read.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from vlacrl.crl.crl_vla import samples as S
from vlacrl.models.inputs import MODEL_INPUT_KEYS

POOL_KEYS = (*MODEL_INPUT_KEYS, "returns")
TARGET_KEYS = ("old_logits", "old_values")
BUFFER_KEYS = POOL_KEYS + TARGET_KEYS


class Reservoir:
    """Uniform random subset of at most ``capacity`` rows of a stream of sample sets (Algorithm R)."""

    def __init__(self, capacity: int, seed: int = 0):
        if capacity < 0:
            raise ValueError(f"reservoir capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        self.seen = 0
        self.data: S.Samples = {}
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return S.num_samples(self.data)

    def offer(self, rows: Mapping[str, torch.Tensor], index: torch.Tensor | None = None) -> None:
        """Offer rows ``index`` of ``rows`` ({key: [n, …]}; all rows when None) as the next part of the stream.

        Stream row t is kept with probability capacity / (t + 1). Only the kept rows are copied (to CPU), so
        ``rows`` may be large views of a rollout batch.
        """
        if index is None:
            index = torch.arange(S.num_samples(rows))
        n = int(index.numel())
        if n == 0 or self.capacity == 0:
            self.seen += n
            return
        free = max(0, min(self.capacity - len(self), n))
        if free > 0:
            self.data = S.concat([self.data, S.to_cpu(S.take(rows, index[:free].to(_device(rows))))])
        self._replace(rows, index, free)
        self.seen += n

    def _replace(self, rows: Mapping[str, torch.Tensor], index: torch.Tensor, start: int) -> None:
        """Algorithm R for stream rows ``index[start:]``: each picks a slot j ~ U{0..t}; j < capacity replaces."""
        rest = torch.arange(start, int(index.numel()))
        if not rest.numel():
            return
        stream_index = (self.seen + rest).to(torch.float64)
        slots = (torch.rand(rest.numel(), generator=self.generator, dtype=torch.float64) * (stream_index + 1)).long()
        chosen: dict[int, int] = {}  # slot -> position in index; a later row overwrites an earlier one
        for slot, position in zip(slots.tolist(), rest.tolist()):
            if slot < self.capacity:
                chosen[slot] = position
        if not chosen:
            return
        target = torch.tensor(list(chosen))
        source = index[torch.tensor(list(chosen.values()))].to(_device(rows))
        for key, value in self.data.items():
            value[target] = rows[key][source].detach().cpu().to(value.dtype)

    def samples(self) -> S.Samples:
        """The kept rows in a random order (so any prefix is a uniform random subset)."""
        if not self.data:
            return {}
        return S.take(self.data, torch.randperm(len(self), generator=self.generator))

    def clear(self) -> None:
        self.data, self.seen = {}, 0


def _device(rows: Mapping[str, torch.Tensor]) -> torch.device:
    return next(iter(rows.values())).device


class OldTaskBuffer(S.FileBacked):
    """B_old: per finished task its samples with π_old logits and V_old; see the module docstring."""

    def __init__(self, capacity: int | None = None):
        self.capacity = None if capacity is None else int(capacity)
        self.tasks: list[int] = []
        self.parts: list[S.Samples] = []
        self._flat: S.Samples | None = None

    def __len__(self) -> int:
        return sum(S.num_samples(p) for p in self.parts)

    def task_counts(self) -> dict[int, int]:
        return {task: S.num_samples(part) for task, part in zip(self.tasks, self.parts)}

    def add_task(self, task_id: int, rows: Mapping[str, torch.Tensor]) -> None:
        """Append a finished task's rows (keys :data:`POOL_KEYS`, targets optional); a task already present gets
        the rows added. Rows without targets leave the buffer unlabelled until :meth:`relabel`."""
        missing = [k for k in POOL_KEYS if k not in rows]
        if missing:
            raise KeyError(f"B_old rows lack {missing}")
        keys = BUFFER_KEYS if all(k in rows for k in TARGET_KEYS) else POOL_KEYS
        if keys is POOL_KEYS:
            self.parts = [{k: p[k] for k in POOL_KEYS} for p in self.parts]  # targets of all rows are stale now
        rows = S.to_cpu({k: rows[k] for k in keys})
        if task_id in self.tasks:
            index = self.tasks.index(task_id)
            self.parts[index] = S.concat([self.parts[index], rows])
        else:
            self.tasks.append(int(task_id))
            self.parts.append(rows)
        self._enforce_capacity()
        self._flat = None

    def _enforce_capacity(self) -> None:
        if self.capacity is None or len(self) <= self.capacity:
            return
        share = self.capacity // len(self.parts)
        self.parts = [S.take(p, slice(0, share)) for p in self.parts]

    @property
    def labelled(self) -> bool:
        """Whether every row has its targets (:data:`TARGET_KEYS`)."""
        return all(k in p for p in self.parts for k in TARGET_KEYS)

    def inputs(self) -> S.Samples:
        """Every row's :data:`POOL_KEYS` (what a forward needs to record targets), in :meth:`all_samples` order."""
        return S.concat([{k: p[k] for k in POOL_KEYS} for p in self.parts])

    def relabel(self, targets: Mapping[str, torch.Tensor]) -> None:
        """Replace every row's targets: ``targets`` = {``old_logits`` [n, …], ``old_values`` [n]}, rows in
        :meth:`inputs` order (an empty buffer takes an empty mapping)."""
        n = len(self)
        if n == 0:
            return
        sizes = [S.num_samples(p) for p in self.parts]
        for key in TARGET_KEYS:
            if key not in targets or targets[key].shape[0] != n:
                raise ValueError(f"B_old relabel: {key} must have {n} rows")
        chunks = {k: torch.split(targets[k].detach().cpu(), sizes) for k in TARGET_KEYS}
        self.parts = [{**{k: p[k] for k in POOL_KEYS}, **{k: chunks[k][i] for k in TARGET_KEYS}}
                      for i, p in enumerate(self.parts)]  # fmt: skip
        self._flat = None

    def all_samples(self) -> S.Samples:
        """Every row, tasks in insertion order, plus ``task_id`` [n] int64 (targets only once :meth:`relabel`
        has run after the last unlabelled :meth:`add_task`)."""
        if not self.labelled:
            raise RuntimeError("B_old has rows without π_old/V_old targets: relabel() it after add_task()")
        if self._flat is None:
            ids = [torch.full((S.num_samples(p),), t, dtype=torch.long) for t, p in zip(self.tasks, self.parts)]
            self._flat = S.concat(self.parts)
            if self._flat:
                self._flat["task_id"] = torch.cat(ids)
        return self._flat

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> S.Samples | None:
        """``batch_size`` rows drawn uniformly (without replacement when possible), or None when empty."""
        size = len(self)
        if size == 0 or batch_size <= 0:
            return None
        if batch_size <= size:
            index = torch.randperm(size, generator=generator)[:batch_size]
        else:
            index = torch.randint(size, (batch_size,), generator=generator)
        return S.take(self.all_samples(), index)

    def shard(self, rank: int, world_size: int) -> OldTaskBuffer:
        """This rank's rows ``i % world_size == rank`` of every task (disjoint over ranks)."""
        out = OldTaskBuffer(self.capacity)
        for task, part in zip(self.tasks, self.parts):
            out.tasks.append(task)
            out.parts.append(S.take(part, S.shard_index(S.num_samples(part), rank, world_size)))
        return out

    @classmethod
    def merge(cls, buffers: Sequence[OldTaskBuffer], capacity: int | None = None) -> OldTaskBuffer:
        """One buffer with each task's rows of all ``buffers`` (tasks in first-appearance order); no capacity cut."""
        out = cls(capacity)
        for buffer in buffers:
            for task, part in zip(buffer.tasks, buffer.parts):
                if task in out.tasks:
                    index = out.tasks.index(task)
                    out.parts[index] = S.concat([out.parts[index], part])
                else:
                    out.tasks.append(task)
                    out.parts.append(dict(part))
        return out

    # -------------------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "tasks": list(self.tasks), "parts": [dict(p) for p in self.parts]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.capacity = state.get("capacity")
        self.tasks = [int(t) for t in state["tasks"]]
        self.parts = [dict(p) for p in state["parts"]]
        self._flat = None
