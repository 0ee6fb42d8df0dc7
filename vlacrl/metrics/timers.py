"""Wall-clock timers per phase (env step, inference, weight sync, training), logged as ``time/<phase>``."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Callable, Mapping


class PhaseTimer:
    """Accumulates seconds per named phase until :meth:`pop` returns and clears them.

    ``synchronize`` (e.g. ``torch.cuda.synchronize``) runs before each clock read, so that asynchronous device
    work queued inside a phase is counted in that phase."""

    def __init__(self, synchronize: Callable[[], None] | None = None):
        self._seconds: dict[str, float] = defaultdict(float)
        self._synchronize = synchronize or (lambda: None)

    @contextlib.contextmanager
    def phase(self, name: str):
        self._synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._synchronize()
            self._seconds[name] += time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        self._seconds[name] += seconds

    def pop(self, prefix: str = "time/") -> dict[str, float]:
        """``{prefix + phase: seconds}`` of everything timed since the last pop."""
        out = {f"{prefix}{k}": v for k, v in self._seconds.items()}
        self._seconds.clear()
        return out


class BusyLog:
    """Wall-clock intervals (``time.time()``: comparable between processes and, NTP-synchronised, between nodes) in
    which a worker did its group's work (env stepping, inference, an actor update)."""

    def __init__(self):
        self._intervals: list[tuple[float, float]] = []

    @contextlib.contextmanager
    def busy(self):
        start = time.time()
        try:
            yield
        finally:
            self._intervals.append((start, time.time()))

    def pop(self) -> list[tuple[float, float]]:
        """The intervals since the last pop, in order."""
        out, self._intervals = self._intervals, []
        return out


def covered_seconds(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of ``[start, end]`` covered by at least one of ``intervals`` (their union, clipped to the window)."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    covered, reach = 0.0, start
    for a, b in clipped:
        if b > reach:
            covered += b - max(a, reach)
            reach = b
    return covered


def coordination_overhead(intervals: list[tuple[float, float]], start: float, end: float) -> dict[str, float]:
    """The part of a global step's window ``[start, end]`` in which no worker of any group was busy (weight sync, Ray
    calls and transfers, batch assembly, metrics): ``time/coordination_overhead`` (s) and its share of the window,
    ``time_share/coordination_overhead`` (not a ``time/`` key, so the phase table does not sum it)."""
    window = max(end - start, 1e-9)
    idle = max(window - covered_seconds(intervals, start, end), 0.0)
    return {"time/coordination_overhead": idle, "time_share/coordination_overhead": idle / window}


#: wall-clock phases of a global step on the driver, in the order of the table
WALL_PHASES = ("weight_sync", "rollout", "actor_training", "checkpoint")
#: busy time summed over the workers of a group during ``rollout`` (a worker group is idle the rest of it)
BUSY_PHASES = {"env_step": "env workers stepping", "rollout_inference": "rollout workers inferring"}
#: actor rank 0's split of ``actor_training``
ACTOR_PHASES = ("actor_forward", "actor_backward", "actor_optimizer")
#: worker group → (its busy-time keys, whether they are summed over the group's workers: the actor's are rank 0's)
GROUP_BUSY = {"env": (("env_step",), True), "rollout": (("rollout_inference",), True), "actor": (ACTOR_PHASES, False)}


def accumulate(totals: dict[str, float], metrics: dict[str, float]) -> None:
    """Add a step's ``time/*`` metrics (seconds) to ``totals`` (keys without the prefix)."""
    for key, value in metrics.items():
        if key.startswith("time/"):
            totals[key[5:]] = totals.get(key[5:], 0.0) + float(value)


def phase_table(totals: dict[str, float], steps: int, workers: Mapping[str, int] | None = None) -> str:
    """Where the time of ``steps`` global steps went: each driver phase's seconds and share of the step wall time
    (``other``: what no phase covers), each worker group's busy time as a share of the rollout phase, actor rank
    0's forward / backward / optimizer split, and with ``workers`` ({group: number of workers}) the share of the
    wall time a worker of each group was busy (the rest it waited)."""
    wall = totals.get("step", 0.0)
    if steps <= 0 or wall <= 0:
        return "no global step was timed"
    lines = [f"where the time went ({steps} global step{'s' if steps != 1 else ''}, {wall:.1f} s):",
             f"  {'phase':<16}{'seconds':>9}{'share':>8}"]  # fmt: skip
    covered = 0.0
    for phase in WALL_PHASES:
        seconds = totals.get(phase, 0.0)
        covered += seconds
        lines.append(f"  {phase:<16}{seconds:>9.1f}{seconds / wall:>8.0%}")
    other = max(wall - covered, 0.0)
    lines.append(f"  {'other':<16}{other:>9.1f}{other / wall:>8.0%}")
    rollout = totals.get("rollout", 0.0)
    for key, words in BUSY_PHASES.items():
        if key in totals and rollout > 0:
            lines.append(f"  {words}: {totals[key]:.1f} s, {totals[key] / rollout:.0%} of the rollout phase "
                         "(summed over the group's workers)")  # fmt: skip
    if all(key in totals for key in ACTOR_PHASES):
        forward, backward, step = (totals[key] for key in ACTOR_PHASES)
        rest = max(totals.get("actor_training", 0.0) - forward - backward - step, 0.0)
        lines.append(f"  actor rank 0: forward {forward:.1f} s, backward {backward:.1f} s, optimizer {step:.1f} s; "
                     f"the rest of actor_training {rest:.1f} s (batch preparation, averaging, transfers)")  # fmt: skip
    if "coordination_overhead" in totals:
        overhead = totals["coordination_overhead"]
        lines.append(f"  coordination overhead (no worker stepping envs, inferring or training): {overhead:.1f} s, "
                     f"{overhead / max(wall - totals.get('checkpoint', 0.0), 1e-9):.0%} of the steps without "
                     "checkpoints")  # fmt: skip
    if workers:
        shares = []
        for group, (keys, summed) in GROUP_BUSY.items():
            if any(k in totals for k in keys):
                per_worker = sum(totals.get(k, 0.0) for k in keys) / (max(workers.get(group, 1), 1) if summed else 1)
                shares.append(f"{group} {per_worker / wall:.0%}")
        lines.append(f"  busy share of the wall time per worker: {', '.join(shares)} (the rest is waiting)")
    return "\n".join(lines)
