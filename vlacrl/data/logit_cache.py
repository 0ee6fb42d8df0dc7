"""The replay / logit-cache HDF5 layout of the reference (docs/methods/er.md), reader and writer.

One file per task, ``<instruction with spaces → _>.hdf5``, holding ``data/demo_<i>`` groups with:

* ``actions`` [T, 7] float32, OpenVLA gripper convention (1 = open, 0 = close);
* ``obs/agentview_rgb`` [T, H, W, 3] uint8 (256 × 256 from the RLDS release), optional ``obs/wrist_image``;
* ``processed_action_logits`` [T, 56, 256] float32 — base-model logits at the action positions, action ids
  only, untempered (absent in ER-only files);
* ``predicted_actions`` [T, 8, 7] (greedy decode of those logits) and ``action_tokens`` [T - 7, 56] (expert
  tokens of ``actions[t : t + 8]``), both informational.

Files written here also carry ``data.attrs["language_instruction"]`` (the reference's files do not; readers
fall back to the file name).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from vlacrl.data.errors import ReplayDataError
from vlacrl.data.formats import Demo, sorted_demo_names

ACTIONS = "actions"
AGENTVIEW = "obs/agentview_rgb"
WRIST = "obs/wrist_image"
PROCESSED_LOGITS = "processed_action_logits"
PREDICTED_ACTIONS = "predicted_actions"
ACTION_TOKENS = "action_tokens"
_OPTIONAL = {
    "wrist_images": WRIST,
    "processed_action_logits": PROCESSED_LOGITS,
    "predicted_actions": PREDICTED_ACTIONS,
    "action_tokens": ACTION_TOKENS,
}


def write_cache_file(path: str | Path, demos: Sequence[tuple[str, Demo]], *, instruction: str | None = None) -> Path:
    """Write ``demos`` ([(group name, demo)]) to ``path`` atomically (temp file + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w") as file:
            data = file.create_group("data")
            if instruction is not None:
                data.attrs["language_instruction"] = instruction
            for name, demo in demos:
                _write_demo(data.create_group(name), demo)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return path


def _write_demo(group: h5py.Group, demo: Demo) -> None:
    group.create_dataset(ACTIONS, data=np.asarray(demo.actions, dtype=np.float32))
    group.create_dataset(AGENTVIEW, data=np.asarray(demo.images, dtype=np.uint8))
    for attr, key in _OPTIONAL.items():
        value = getattr(demo, attr)
        if value is None:
            continue
        if attr == "wrist_images":
            value = np.asarray(value, dtype=np.uint8)
        elif attr == "action_tokens":
            value = np.asarray(value, dtype=np.int64)
        else:
            value = np.asarray(value, dtype=np.float32)
        group.create_dataset(key, data=value)
    group.attrs["num_samples"] = demo.num_steps


def read_cache_demo(path: str | Path, name: str, *, with_optional: bool = True) -> Demo:
    """``data/<name>`` of a cache file → :class:`Demo` (optional arrays only when present and asked for)."""
    try:
        with h5py.File(path, "r") as file:
            group = file["data"][name]
            kwargs = {"actions": np.asarray(group[ACTIONS], dtype=np.float32), "images": np.asarray(group[AGENTVIEW])}
            if with_optional:
                for attr, key in _OPTIONAL.items():
                    if key in group:
                        kwargs[attr] = np.asarray(group[key])
    except KeyError as exc:
        raise ReplayDataError(f"{path}: demo {name!r} lacks {exc} (expected the replay layout: docs/data.md)") from exc
    except OSError as exc:
        raise ReplayDataError(f"cannot read {path} as HDF5 ({exc})") from exc
    return Demo(**kwargs)


def read_cache_file(path: str | Path, *, with_optional: bool = True) -> list[tuple[str, Demo]]:
    """Every demo of a cache file, in lexicographic group order."""
    with h5py.File(path, "r") as file:
        if "data" not in file:
            raise ReplayDataError(f"{path} has no 'data' group: not a replay/logit-cache file")
        names = sorted_demo_names(file["data"].keys())
    return [(name, read_cache_demo(path, name, with_optional=with_optional)) for name in names]


def cache_instruction(path: str | Path) -> str | None:
    """``data.attrs["language_instruction"]`` when the writer stored it, else None."""
    with h5py.File(path, "r") as file:
        value = file["data"].attrs.get("language_instruction") if "data" in file else None
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
