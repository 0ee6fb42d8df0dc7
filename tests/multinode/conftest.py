"""A real multi-node Ray cluster on one machine: a head node (the "trainer" resource: actor and rollout workers) and a
second node (the "sim" resource: env workers), each its own raylet and object store, joined through the head's GCS
like machines of a cluster (``ray.cluster_utils.Cluster``). Runs connect to it with ``cluster.address``.

Node failure is detected within a few seconds (GCS health checks every 500 ms, 3 misses).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "learning"))

STORE = 200 * 1024**2  # object store per node (bytes)
FAST_FAILURE_DETECTION = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                          "health_check_failure_threshold": 3}  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 2, "resources": {"trainer": 100}, "object_store_memory": STORE,
            "_system_config": FAST_FAILURE_DETECTION}  # fmt: skip
    ray_cluster = Cluster(initialize_head=True, head_node_args=head)
    ray_cluster.add_sim_node = lambda: add_sim_node(ray_cluster)
    ray_cluster.sim_node = add_sim_node(ray_cluster)
    yield ray_cluster
    ray_cluster.shutdown()


def add_sim_node(ray_cluster):
    """A second node offering the "sim" resource (the env workers' node)."""
    node = ray_cluster.add_node(num_cpus=2, resources={"sim": 100}, object_store_memory=STORE)
    ray_cluster.wait_for_nodes()
    return node
