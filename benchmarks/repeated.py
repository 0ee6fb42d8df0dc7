"""Measurements that survive a shared, noisy machine: every compared configuration is measured ``runs`` times
(≥ 3), the configurations alternating within each round so that a load change hits all of them; each reports its
median and spread (max − min); the load average is recorded before and after; and a ratio between two
configurations is given only when their difference exceeds the larger spread (otherwise: "within noise").

Used by benchmarks/pipeline.py and benchmarks/model_step.py (benchmarks/RESULTS.md says which figures came from it).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import Callable, Mapping

MIN_RUNS = 3


@dataclass
class Measurement:
    """The values one configuration gave, in run order (any unit; the caller names it)."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        return max(self.values) - min(self.values)

    def as_dict(self) -> dict:
        return {"median": self.median, "spread": self.spread, "min": min(self.values), "max": max(self.values),
                "runs": list(self.values)}  # fmt: skip


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def measure_alternating(configs: Mapping[str, Callable[[], float]], runs: int = MIN_RUNS) -> dict:
    """Run every configuration once per round, ``runs`` rounds (≥ 3), in the given order, and return
    ``{"load_before", "load_after", "runs", "results": {name: Measurement}}``."""
    if runs < MIN_RUNS:
        raise ValueError(f"at least {MIN_RUNS} runs per configuration, got {runs}")
    results = {name: Measurement(name) for name in configs}
    before = load_average()
    for _ in range(runs):
        for name, measure in configs.items():
            results[name].values.append(float(measure()))
    return {"load_before": before, "load_after": load_average(), "runs": runs, "results": results}


def ratio(numerator: Measurement, denominator: Measurement) -> dict:
    """``numerator.median / denominator.median`` when the medians differ by more than the larger spread, else no
    ratio and the reason (the figures cannot tell the two apart)."""
    difference = abs(numerator.median - denominator.median)
    noise = max(numerator.spread, denominator.spread)
    if difference <= noise:
        return {"ratio": None, "why": f"within noise: medians differ by {difference:.4g}, spread up to {noise:.4g}"}
    return {"ratio": numerator.median / denominator.median, "why": ""}


def report(measured: dict) -> dict:
    """``measure_alternating``'s result as plain JSON-able data."""
    return {**measured, "results": {k: m.as_dict() for k, m in measured["results"].items()}}
