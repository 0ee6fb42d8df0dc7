"""Wall-clock timers per phase (env step, inference, weight sync, training), logged as ``time/<phase>``."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict


class PhaseTimer:
    """Accumulates seconds per named phase until :meth:`pop` returns and clears them."""

    def __init__(self):
        self._seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] += time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        self._seconds[name] += seconds

    def pop(self, prefix: str = "time/") -> dict[str, float]:
        """``{prefix + phase: seconds}`` of everything timed since the last pop."""
        out = {f"{prefix}{k}": v for k, v in self._seconds.items()}
        self._seconds.clear()
        return out
