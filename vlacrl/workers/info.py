"""What every worker answers about its own process: resident memory, the Ray node it runs on, whether it sees a
path of the driver's filesystem (checkpoints need a filesystem shared by the driver and the actor ranks)."""

from __future__ import annotations

import functools
from pathlib import Path

from vlacrl.metrics.memory import rss_mb
from vlacrl.metrics.timers import BusyLog
from vlacrl.workers.errors import annotated


class WorkerInfo:
    """Mixin of the worker classes (they set ``role`` and ``rank``)."""

    def busy(self):
        """Context manager: the enclosed work counts as this worker's group's work (``pop_busy``)."""
        return self.__dict__.setdefault("_busy_log", BusyLog()).busy()

    @annotated
    def pop_busy(self) -> list[tuple[float, float]]:
        """Wall-clock intervals of this worker's work since the last call (the driver's coordination overhead)."""
        return self.__dict__.setdefault("_busy_log", BusyLog()).pop()

    @annotated
    def rss_mb(self) -> float:
        """Resident memory of this worker process (MiB)."""
        return rss_mb()

    @annotated
    def node(self) -> dict[str, str]:
        """``{"node_id": <hex>, "ip": <address>}`` of the Ray node this worker runs on."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address()}

    @annotated
    def sees(self, path: str) -> bool:
        """Whether ``path`` (written by the driver) exists on this worker's filesystem."""
        return Path(path).exists()


def group_work(method):
    """Decorate a worker method whose whole call is its group's work (env step, inference, actor update)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.busy():
            return method(self, *args, **kwargs)

    return wrapper
