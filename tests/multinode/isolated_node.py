"""A Ray node that does not share the driver's filesystem, on one machine: a private mount namespace."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

STORE = 200 * 1024**2  # object store of the node (bytes)


class IsolatedNode:
    """A node started with ``ray start`` in a private mount namespace where ``hidden`` is an empty tmpfs: its
    workers do not see what the driver writes there (a machine without the shared filesystem)."""

    def __init__(self, address: str, hidden: Path, resource: str):
        hidden.mkdir(parents=True, exist_ok=True)
        ray_start = Path(sys.executable).with_name("ray")
        script = (f"mount -t tmpfs tmpfs {hidden} && exec {ray_start} start --address={address} --num-cpus=1 "
                  f"--resources='{{\"{resource}\": 100}}' --object-store-memory={STORE} --block")  # fmt: skip
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_joined(self, address: str, resource: str, timeout: float = 90) -> None:
        """Block until the cluster offers ``resource`` (the node has joined)."""
        import ray

        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        try:
            deadline = time.time() + timeout
            while resource not in ray.cluster_resources():
                assert time.time() < deadline, f"the isolated node never offered {resource!r}"
                time.sleep(0.5)
        finally:
            ray.shutdown()

    def stop(self) -> None:
        """Kill the node: ``ray start``, its raylet and every worker it started."""
        import psutil

        try:
            processes = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            processes = []
        for process in processes:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(timeout=30)
