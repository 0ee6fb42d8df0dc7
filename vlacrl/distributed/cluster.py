"""Start or join a Ray cluster and reserve resources for the worker groups.

* ``cluster.address: null`` starts a local Ray cluster (the default, also on a laptop);
  ``auto`` or ``host:port`` joins a running one (``ray start --head`` on the head node first).
* One placement group holds one bundle per GPU (``PACK``: as few nodes as possible, so a run larger than
  one node spans several; NCCL then connects the actor ranks across nodes); the workers of every
  component placed on GPU ``g`` share bundle ``g`` with fractional GPU shares, so colocated actor,
  rollout and env workers of one GPU land together. Without GPUs, each CPU worker gets a small CPU
  share in a bundle of its own, so a 2-core machine can host all of them.
* ``cluster.node_resources`` pins a component to the nodes that offer a custom Ray resource (``{env: sim}`` with
  ``ray start --resources='{"sim": 100}'`` on the CPU-only simulation nodes): each of its workers asks for
  ``CPU_SHARE`` of that resource in its bundle. A name no node offers is one :class:`ClusterError` line.
* Waiting for a placement group is bounded (``cluster.placement_timeout_s``); on time-out the error
  lists what the cluster has and what was asked.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from vlacrl.distributed.placement import ComponentPlacement

logger = logging.getLogger(__name__)

# Share of one GPU per colocated component (sums to 1; eval envs live beside the training envs).
GPU_SHARE = {"actor": 0.35, "rollout": 0.35, "env": 0.15, "eval_env": 0.15}
CPU_SHARE = 0.01  # CPU workers are scheduled without competing for Ray's CPU slots


class ClusterError(RuntimeError):
    """Ray could not be started/joined or the requested resources do not exist."""


@dataclass(frozen=True)
class WorkerSlot:
    """Where one worker goes: Ray options for ``ActorClass.options(**slot.ray_options)``."""

    component: str
    rank: int
    ray_options: dict


def init_ray(address: str | None = None, object_store_memory: int | None = None, env_vars: dict | None = None):
    """Start a local Ray cluster (``address=None``) or connect to one; idempotent."""
    import ray

    if ray.is_initialized():
        return
    runtime_env = {"env_vars": {k: str(v) for k, v in (env_vars or {}).items()}}
    kwargs = dict(include_dashboard=False, log_to_driver=True, runtime_env=runtime_env, configure_logging=False)
    if address:
        kwargs["address"] = address
    elif object_store_memory:
        kwargs["object_store_memory"] = int(object_store_memory)
    os.environ.setdefault("RAY_DISABLE_DASHBOARD", "1")
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise ClusterError(f"cannot start or join {where}: {exc}") from exc
    logger.info("Ray ready: %s", describe_resources(ray.cluster_resources()))


def describe_resources(resources: dict[str, float]) -> str:
    """``{'CPU': 2.0, 'memory': 1.7e10, ...}`` → ``1 node, 2 CPUs, 0 GPUs, 15.8 GiB memory, 6.8 GiB object store``."""
    nodes = sum(1 for key in resources if key.startswith("node:") and not key.startswith("node:__"))
    gib = 1024**3
    return (
        f"{nodes} node{'s' if nodes != 1 else ''}, {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs, "
        f"{resources.get('memory', 0) / gib:.1f} GiB memory, {resources.get('object_store_memory', 0) / gib:.1f} GiB "
        "object store"
    )


def cluster_gpus() -> int:
    """GPUs Ray sees in the cluster (0 on CPU machines)."""
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def check_node_resources(node_resources: dict[str, str], cluster_resources: dict[str, float]) -> None:
    """Every resource named in ``cluster.node_resources`` is offered by some node of the cluster."""
    own = sorted(k for k in cluster_resources if k not in ("CPU", "GPU", "memory", "object_store_memory")
                 and not k.startswith(("node:", "accelerator_type:")))  # fmt: skip
    for component, resource in node_resources.items():
        if resource not in cluster_resources:
            raise ClusterError(
                f"cluster.node_resources.{component}: no Ray node offers the resource {resource!r} (custom resources "
                f"of this cluster: {own or 'none'}); start the nodes for {component} with "
                f"`ray start --address=<head> --resources='{{\"{resource}\": 100}}'`"
            )


def reserve(
    placement: dict[str, ComponentPlacement], timeout_s: float = 300.0, node_resources: dict[str, str] | None = None
) -> dict[str, list[WorkerSlot]]:
    """Create the placement group(s) and return one :class:`WorkerSlot` per worker of each component.

    ``node_resources``: component → custom Ray resource its workers need (``cluster.node_resources``)."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    node_resources = dict(node_resources or {})
    check_node_resources(node_resources, ray.cluster_resources())
    pinned = {c: {node_resources[c]: CPU_SHARE} for c in placement if c in node_resources}
    gpu_ids = sorted({g for p in placement.values() if p.uses_gpu for g in p.gpu_ids})
    cpu_workers = [(c, r) for c, p in placement.items() if not p.uses_gpu for r in range(p.world_size)]
    bundles = [{"GPU": 1.0, "CPU": CPU_SHARE * 3} for _ in gpu_ids] + [
        {"CPU": CPU_SHARE, **pinned.get(c, {})} for c, _ in cpu_workers
    ]
    for name, comp in placement.items():  # a GPU bundle holds the custom resources of every component on it
        for gpu in comp.gpu_ids or ():
            for key, amount in pinned.get(name, {}).items():
                bundle = bundles[gpu_ids.index(gpu)]
                bundle[key] = bundle.get(key, 0.0) + amount
    group = placement_group(bundles, strategy="PACK")
    ready, _ = ray.wait([group.ready()], timeout=timeout_s)
    if not ready:
        ray.util.remove_placement_group(group)
        raise ClusterError(
            f"waited {timeout_s:.0f}s for resources {bundles} but the cluster has {ray.available_resources()}; "
            "check cluster.component_placement and the GPUs of the Ray nodes"
        )
    slots: dict[str, list[WorkerSlot]] = {name: [] for name in placement}
    bundle_of_gpu = {g: i for i, g in enumerate(gpu_ids)}
    bundle_of_cpu = {key: len(gpu_ids) + i for i, key in enumerate(cpu_workers)}
    for name, comp in placement.items():
        for rank in range(comp.world_size):
            if comp.uses_gpu:
                index, resources = (
                    bundle_of_gpu[comp.gpu_ids[rank]],
                    {"num_gpus": GPU_SHARE[name], "num_cpus": CPU_SHARE},
                )
            else:
                index, resources = bundle_of_cpu[(name, rank)], {"num_gpus": 0, "num_cpus": CPU_SHARE}
            if name in pinned:
                resources["resources"] = dict(pinned[name])
            strategy = PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=index)
            slots[name].append(WorkerSlot(name, rank, {"scheduling_strategy": strategy, **resources}))
    slots["eval_env"] = [eval_slot(s) for s in slots["env"]]
    return slots


def eval_slot(env_slot: WorkerSlot) -> WorkerSlot:
    """The evaluation env worker of an env rank: same bundle, its own GPU share, no CPU share."""
    options = dict(env_slot.ray_options, num_cpus=0)
    options.pop("resources", None)  # the training env worker holds the bundle's share of a pinned resource
    options["num_gpus"] = GPU_SHARE["eval_env"] if env_slot.ray_options["num_gpus"] > 0 else 0
    return WorkerSlot("eval_env", env_slot.rank, options)
