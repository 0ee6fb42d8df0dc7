"""Sample sets as ``{key: tensor [n, …]}`` dicts (one row per sample), their files, and the rank of this actor.

Shared by CRL-VLA's old-task buffer B_old and iRe-VLA's success buffer D_RL. Each actor rank keeps its own
samples and writes them as ``<dir>/<stem>_rank<r>.pt``; loading reads every rank file of a directory, so a
run can resume with a different number of actor ranks (the buffers then re-shard themselves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

Samples = dict[str, torch.Tensor]


def num_samples(samples: Mapping[str, torch.Tensor]) -> int:
    """Row count shared by every value (0 for an empty dict); ``ValueError`` when they disagree."""
    sizes = {key: int(value.shape[0]) for key, value in samples.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"sample keys disagree on the row count: {sizes}")
    return next(iter(sizes.values()), 0)


def take(samples: Mapping[str, torch.Tensor], index: torch.Tensor | slice) -> Samples:
    """Rows ``index`` of every key."""
    return {key: value[index] for key, value in samples.items()}


def concat(parts: Sequence[Mapping[str, torch.Tensor]]) -> Samples:
    """Row-wise concatenation of sample sets with the same keys (empty sets are skipped)."""
    parts = [p for p in parts if p and num_samples(p) > 0]
    if not parts:
        return {}
    keys = list(parts[0])
    for part in parts[1:]:
        if sorted(part) != sorted(keys):
            raise ValueError(f"sample sets have different keys: {sorted(keys)} vs {sorted(part)}")
    return {key: torch.cat([p[key] for p in parts]) for key in keys}


def to_cpu(samples: Mapping[str, torch.Tensor]) -> Samples:
    return {key: value.detach().cpu() for key, value in samples.items()}


def shard_index(count: int, rank: int, world_size: int) -> torch.Tensor:
    """Indices ``i`` with ``i % world_size == rank`` of ``range(count)`` (disjoint, covers every row)."""
    return torch.arange(rank, count, world_size, dtype=torch.long)


def rank_and_world() -> tuple[int, int]:
    """This process's rank and world size in the default process group ((0, 1) without one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def rank_file(directory: str | Path, stem: str, rank: int) -> Path:
    return Path(directory) / f"{stem}_rank{rank}.pt"


def rank_files(directory: str | Path, stem: str) -> list[Path]:
    """Every ``<stem>_rank<r>.pt`` in ``directory``, by rank."""
    found = []
    for path in Path(directory).glob(f"{stem}_rank*.pt"):
        suffix = path.stem.removeprefix(f"{stem}_rank")
        if suffix.isdigit():
            found.append((int(suffix), path))
    return [path for _, path in sorted(found)]


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temp file beside ``path``, then rename (no half-written file on interruption)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def load(path: str | Path) -> Any:
    """A file written by :func:`save_atomic` (tensors on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return torch.load(path, map_location="cpu", weights_only=True)


class FileBacked:
    """Mixin: ``save``/``load`` through ``state_dict``/``load_state_dict`` (atomic ``torch.save`` files).

    Subclasses construct with no arguments and implement ``state_dict`` and ``load_state_dict``.
    """

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        return save_atomic(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path):
        buffer = cls()
        buffer.load_state_dict(load(path))
        return buffer
