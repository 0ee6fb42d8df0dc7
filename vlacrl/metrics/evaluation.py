"""Evaluation metrics as the reference computes them (docs/architecture.md), from per-episode records."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

import numpy as np

SUMMARY_KEYS = ("success_once", "success_at_end", "return", "episode_len", "reward")


def epoch_metrics(episodes: Mapping[str, np.ndarray], task_ids: Iterable[int]) -> dict[str, float]:
    """Metrics of one evaluation epoch over all workers' episodes.

    Args:
        episodes: per-episode arrays (``task_id``, ``success_once``, ``success_at_end``, ``return``, ...), [K] each.
        task_ids: the tasks whose keys must appear (a task without episodes reports -1.0).
    Returns:
        ``env_info/task_<k>_success`` (success_once rate of task k), ``env_info/task_<k>_success_total``
        (episode count) and the means of the summary keys, all as floats.
    """
    tasks = np.asarray(episodes["task_id"]).astype(int)
    success = np.asarray(episodes["success_once"]).astype(float)
    out: dict[str, float] = {}
    for k in task_ids:
        mine = tasks == int(k)
        count = int(mine.sum())
        out[f"env_info/task_{int(k)}_success"] = float(success[mine].mean()) if count else -1.0
        out[f"env_info/task_{int(k)}_success_total"] = float(count)
    for key in SUMMARY_KEYS:
        if key in episodes:
            out[f"env_info/{key}"] = float(np.asarray(episodes[key]).astype(float).mean())
    return out


def average_epochs(per_epoch: list[dict[str, float]]) -> dict[str, float]:
    """Plain mean of each key over the epochs in which it appears."""
    sums: dict[str, list[float]] = defaultdict(list)
    for metrics in per_epoch:
        for key, value in metrics.items():
            sums[key].append(value)
    return {key: float(np.mean(values)) for key, values in sums.items()}


def merge_episode_records(records: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate the per-env arrays of several workers/stages (keys present in every record)."""
    keys = set.intersection(*(set(r) for r in records))
    return {key: np.concatenate([np.asarray(r[key]) for r in records]) for key in keys}
