"""Local (one actor rank) metric helpers with the reference's names; cross-rank reduction is the worker's job."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch


def rollout_metrics(rewards: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, float]:
    """``rewards``, ``advantages_{mean,max,min}``, ``returns_{mean,max,min}`` (logged as ``rollout/<key>``).

    Means run over every entry, masked steps included (as the reference). Across ranks the means are averaged
    and the extremes reduced with max / min.
    """
    out = {"rewards": rewards.float().mean().item()}
    for name, tensor in (("advantages", advantages), ("returns", returns)):
        x = tensor.float()
        out[f"{name}_mean"] = x.mean().item()
        out[f"{name}_max"] = x.max().item()
        out[f"{name}_min"] = x.min().item()
    return out


def mean_metrics(per_micro_batch: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average each key over the micro-batches that reported it (the reference's ``np.mean`` per key)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metrics in per_micro_batch:
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}
