"""Replay data for ER/DER: LIBERO demo HDF5 files, the logit cache, the replay dataset, an RLDS converter.

Layouts: :mod:`vlacrl.data.formats` (the in-memory :class:`Demo` and the conventions), LIBERO's own files
(:mod:`vlacrl.data.libero_hdf5`), the replay / logit-cache files of docs/methods/er.md (:mod:`vlacrl.data.logit_cache`).
The logit computation lives in :mod:`vlacrl.data.precompute`, the RLDS reader in :mod:`vlacrl.data.rlds`
(TFRecords read by :mod:`vlacrl.data.tfrecord`, no TensorFlow). See docs/data.md.
"""

from __future__ import annotations

from pathlib import Path

from vlacrl.data.errors import ReplayDataError
from vlacrl.data.formats import Demo, cache_file_name, libero_gripper_to_openvla, task_description_from_filename
from vlacrl.data.logit_cache import read_cache_demo, read_cache_file, write_cache_file
from vlacrl.data.replay_dataset import (
    ReplayBatchIterator,
    ReplayCollator,
    ReplayDataset,
    replay_files,
    select_task_files,
)

REPLAY_DIR_SUFFIX = "_simplevla"


def _dataset_root(suite: str) -> Path:
    from vlacrl.envs.registry import simulator_of_suite

    return simulator_of_suite(suite).dataset_root()


def default_replay_dir(suite: str) -> Path:
    """``<data root>/datasets_with_logits/<suite>_simplevla`` (the reference's name). The data root is the
    suite's simulator's (LIBERO: ``<LIBERO config dir>/datasets``; probe: ``<repo>/datasets``)."""
    return _dataset_root(suite) / "datasets_with_logits" / f"{suite}{REPLAY_DIR_SUFFIX}"


def default_rlds_dir(suite: str) -> Path | None:
    """The suite's released RLDS demos (LIBERO: ``<LIBERO config dir>/datasets/modified_libero_rlds/
    <suite>_no_noops/1.0.0``, where the reference reads them), or None when its simulator has no release."""
    from vlacrl.envs.registry import simulator_of_suite

    return simulator_of_suite(suite).rlds_release(suite)


def default_demo_dir(suite: str) -> Path:
    """``<data root>/<suite>``: where LIBERO's download script (or ``vlacrl-rollout --policy expert``) puts demos."""
    return _dataset_root(suite) / suite


__all__ = [
    "Demo",
    "ReplayBatchIterator",
    "ReplayCollator",
    "ReplayDataError",
    "ReplayDataset",
    "cache_file_name",
    "default_demo_dir",
    "default_replay_dir",
    "default_rlds_dir",
    "libero_gripper_to_openvla",
    "read_cache_demo",
    "read_cache_file",
    "replay_files",
    "select_task_files",
    "task_description_from_filename",
    "write_cache_file",
]
