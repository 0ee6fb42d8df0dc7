"""What every worker answers about its own process: resident memory, the Ray node it runs on, whether it sees a
path of the driver's filesystem (checkpoints need a filesystem shared by the driver and the actor ranks)."""

from __future__ import annotations

from pathlib import Path

from vlacrl.metrics.memory import rss_mb
from vlacrl.workers.errors import annotated


class WorkerInfo:
    """Mixin of the worker classes (they set ``role`` and ``rank``)."""

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
