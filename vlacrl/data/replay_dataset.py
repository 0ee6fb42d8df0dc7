"""The ER/DER replay dataset and its endless micro-batch iterator (docs/methods/er.md).

:class:`ReplayDataset` indexes every ``.hdf5`` file of a directory in the replay layout
(:mod:`vlacrl.data.logit_cache`): per file the first ``demos_per_task`` demos in lexicographic order, per demo
every start step ``t ∈ [0, T − C]`` (C = ``num_action_chunks``), sharded over ranks by ``index % ws == rank``.
A sample is the agentview frame at t, ``actions[t : t + C]`` and, for DER, the cached logits at t.

:class:`ReplayCollator` turns samples into model inputs with the policy's processor (frames as float tensors,
the spec's "SFT" path) plus the expert action tokens; :class:`ReplayBatchIterator` draws shuffled, seeded
micro-batches forever (drop-last per pass), optionally in DataLoader worker processes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vlacrl.data.errors import ReplayDataError
from vlacrl.data.formats import normalize_instruction, sorted_demo_names, task_description_from_filename
from vlacrl.data.logit_cache import ACTIONS, AGENTVIEW, PROCESSED_LOGITS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives: file, demo group, start step, and the task description of the file."""

    path: str
    demo: str
    t: int
    task_description: str


def replay_files(root_dir: str | Path) -> list[Path]:
    """Every ``*.hdf5`` directly in ``root_dir``, sorted by name; one-line error when none."""
    root = Path(root_dir)
    if not root.is_dir():
        raise ReplayDataError(
            f"replay data directory {root} does not exist: build it with vlacrl-precompute-logits "
            "(or set crl.dataset_dir)"
        )
    files = sorted(p for p in root.iterdir() if p.suffix == ".hdf5" and p.is_file())
    if not files:
        raise ReplayDataError(f"no .hdf5 files in {root}: build them with vlacrl-precompute-logits")
    return files


def select_task_files(files: Sequence[Path], instructions: Sequence[str]) -> list[Path]:
    """The files whose task description (from the file name) matches one of ``instructions``.

    Matching is on :func:`normalize_instruction` forms; a file also matches when its description ends with
    the instruction (LIBERO-10 file names carry a scene prefix). Raises when an instruction has no file.
    """
    wanted = [normalize_instruction(text) for text in instructions]
    chosen, missing = [], []
    for text in wanted:
        hits = [f for f in files if _matches(normalize_instruction(task_description_from_filename(f)), text)]
        if not hits:
            missing.append(text)
        chosen.extend(h for h in hits if h not in chosen)
    if missing:
        raise ReplayDataError(f"no replay file for task(s) {missing} among {[f.name for f in files]}")
    return sorted(chosen)


def _matches(description: str, instruction: str) -> bool:
    return description == instruction or description.endswith(" " + instruction)


class ReplayDataset(Dataset):
    """Samples of the replay directory for one rank; ``__getitem__`` returns raw numpy arrays.

    Item: ``image`` [H, W, 3] uint8, ``task_description`` str, ``actions`` [C, 7] float32 and, with
    ``with_logits``, ``reference_logits`` [56, 256] float32.
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        *,
        demos_per_task: int | None = 1,
        num_action_chunks: int = 8,
        rank: int = 0,
        world_size: int = 1,
        with_logits: bool = False,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.num_action_chunks = int(num_action_chunks)
        self.with_logits = bool(with_logits)
        all_refs = [ref for path in files for ref in self._file_samples(Path(path), demos_per_task)]
        self.num_total = len(all_refs)
        self.samples = [ref for index, ref in enumerate(all_refs) if index % world_size == rank]
        self._handles: dict[str, h5py.File] = {}
        self._pid = os.getpid()
        logger.info("replay dataset: %d of %d samples on rank %d/%d", len(self), self.num_total, rank, world_size)

    def _file_samples(self, path: Path, demos_per_task: int | None) -> list[SampleRef]:
        description = task_description_from_filename(path)
        refs = []
        try:
            with h5py.File(path, "r") as file:
                names = sorted_demo_names(file["data"].keys())
                for name in names[:demos_per_task] if demos_per_task is not None else names:
                    group = file["data"][name]
                    if self.with_logits and PROCESSED_LOGITS not in group:
                        raise ReplayDataError(
                            f"{path}: {name} has no {PROCESSED_LOGITS} (DER with cached logits needs the cache "
                            "written by vlacrl-precompute-logits)"
                        )
                    steps = int(group[ACTIONS].shape[0])
                    refs.extend(
                        SampleRef(str(path), name, t, description) for t in range(steps - self.num_action_chunks + 1)
                    )
        except (OSError, KeyError) as exc:
            raise ReplayDataError(f"cannot read {path} in the replay layout ({exc})") from exc
        return refs

    def __len__(self) -> int:
        return len(self.samples)

    def _file(self, path: str) -> h5py.File:
        if self._pid != os.getpid():  # forked DataLoader worker: never share HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        if path not in self._handles:
            self._handles[path] = h5py.File(path, "r")
        return self._handles[path]

    def __getitem__(self, index: int) -> dict[str, Any]:
        ref = self.samples[index]
        group = self._file(ref.path)["data"][ref.demo]
        item = {
            "image": np.asarray(group[AGENTVIEW][ref.t]),
            "task_description": ref.task_description,
            "actions": np.asarray(group[ACTIONS][ref.t : ref.t + self.num_action_chunks], dtype=np.float32),
        }
        if self.with_logits:
            item["reference_logits"] = np.asarray(group[PROCESSED_LOGITS][ref.t], dtype=np.float32)
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}


@dataclass
class ReplayCollator:
    """Samples → one replay micro-batch of B samples.

    Output: ``input_ids`` [B, L] int64, ``attention_mask`` [B, L] bool, ``pixel_values`` [B, 1, 6, 224, 224]
    float32 (frames converted to float before resizing), ``action_tokens`` [B, C·D] int64 expert tokens
    (BOUNDS_Q99 encoding, docs/models.md), ``actions`` [B, C, D] float32 and, when present,
    ``reference_logits`` [B, 56, 256] float32.
    """

    processor: Callable[[list[str], torch.Tensor], dict[str, torch.Tensor]]
    action_tokenizer: Any  # vlacrl.models.openvla_oft.ActionTokenizer

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = torch.from_numpy(np.stack([s["image"] for s in samples])).to(torch.float32)
        batch = self.processor([s["task_description"] for s in samples], images)
        actions = torch.from_numpy(np.stack([s["actions"] for s in samples]))
        batch["action_tokens"] = self.action_tokenizer.encode(actions).to(torch.long)
        batch["actions"] = actions
        if "reference_logits" in samples[0]:
            batch["reference_logits"] = torch.from_numpy(np.stack([s["reference_logits"] for s in samples]))
        return batch


class CyclingBatchSampler(Sampler):
    """Endless index batches: pass p is a seeded permutation cut into ``batch_size`` slices (last partial
    slice dropped). ``reshuffle=False`` reuses pass 0's order every pass — the reference's
    ``itertools.cycle(DataLoader)``; True draws a new permutation (seed + p) per pass."""

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, reshuffle: bool = False):
        if num_samples < batch_size:
            raise ReplayDataError(
                f"replay shard has {num_samples} samples, fewer than one micro-batch of {batch_size} "
                "(use more demos per task or fewer ranks)"
            )
        self.num_samples, self.batch_size, self.seed, self.reshuffle = num_samples, batch_size, seed, reshuffle

    @property
    def batches_per_pass(self) -> int:
        return self.num_samples // self.batch_size

    def permutation(self, pass_index: int) -> list[int]:
        seed = self.seed + (pass_index if self.reshuffle else 0)
        return torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(seed)).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        pass_index = 0
        while True:
            order = self.permutation(pass_index)
            for start in range(0, self.batches_per_pass * self.batch_size, self.batch_size):
                yield order[start : start + self.batch_size]
            pass_index += 1


class ReplayBatchIterator:
    """``next()`` → the next replay micro-batch (:class:`ReplayCollator` output), forever."""

    def __init__(
        self,
        dataset: ReplayDataset,
        collate: ReplayCollator,
        batch_size: int,
        *,
        seed: int = 0,
        reshuffle: bool = False,
        num_workers: int = 0,
    ):
        self.sampler = CyclingBatchSampler(len(dataset), int(batch_size), int(seed), bool(reshuffle))
        extra = {"prefetch_factor": 2, "persistent_workers": True} if num_workers > 0 else {}
        loader = DataLoader(
            dataset, batch_sampler=self.sampler, collate_fn=collate, num_workers=int(num_workers), **extra
        )
        self._iterator = iter(loader)
        self.batches_drawn = 0

    def __iter__(self) -> ReplayBatchIterator:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = next(self._iterator)
        self.batches_drawn += 1
        return batch
