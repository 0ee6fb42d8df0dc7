"""Which Ray node runs which worker, what a lost node took with it, and whether the actor ranks share the driver's
filesystem (docs/reproducing.md, "Several machines").

* :func:`locate_workers` asks every worker for its node; the run logs one line per node and writes
  ``<log_path>/placement.json`` (``{node_id: {"ip": …, "workers": {role: [ranks]}}}``).
* :func:`node_lost` turns a lost node into one :class:`NodeLostError` line: the node, the roles it ran, where the
  run stopped and how to continue (``runner.resume=auto``).
* :func:`check_shared_log_path`: checkpoints are written by the actor ranks into ``runner.logger.log_path`` and
  completed by the driver (``checkpoint.save_atomic``), so every actor rank must see the driver's log directory.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any, Callable

from vlacrl.distributed.cluster import ClusterError
from vlacrl.runners.errors import NodeLostError

logger = logging.getLogger(__name__)

ROLE_GROUPS = (("actor", "actors"), ("rollout", "rollouts"), ("env", "envs"), ("eval env", "eval_envs"))


def locate_workers(groups: Any, get: Callable) -> dict[str, dict]:
    """``{node_id: {"ip": str, "workers": {role: [rank, …]}}}`` of every started worker (``get``: ``ray_get``)."""
    placement: dict[str, dict] = {}
    for role, attribute in ROLE_GROUPS:
        handles = getattr(groups, attribute)
        for rank, node in enumerate(get([h.node.remote() for h in handles]) if handles else []):
            entry = placement.setdefault(node["node_id"], {"ip": node["ip"], "workers": {}})
            entry["workers"].setdefault(role, []).append(rank)
    return placement


def describe_roles(workers: dict[str, list[int]]) -> str:
    """``{"actor": [0], "env": [2, 3]}`` → ``actor rank 0, env ranks 2-3``."""
    parts = []
    for role, unordered in workers.items():
        ranks = sorted(unordered)
        contiguous = ranks == list(range(ranks[0], ranks[-1] + 1))
        if len(ranks) == 1:
            parts.append(f"{role} rank {ranks[0]}")
        elif contiguous:
            parts.append(f"{role} ranks {ranks[0]}-{ranks[-1]}")
        else:
            parts.append(f"{role} ranks {','.join(map(str, ranks))}")
    return ", ".join(parts)


def record_placement(placement: dict[str, dict], log_path: Path) -> None:
    """Log one line per node and write ``placement.json`` into the run's log directory."""
    for node_id, entry in placement.items():
        logger.info("node %s (%s): %s", node_id[:12], entry["ip"], describe_roles(entry["workers"]))
    log_path.mkdir(parents=True, exist_ok=True)
    (log_path / "placement.json").write_text(json.dumps(placement, indent=1, sort_keys=True))


def node_lost(
    exc: NodeLostError, placement: dict[str, dict], stopped_at: str, checkpoint: Path | None
) -> NodeLostError:
    """``exc`` (from ``ray_get``: the node id only) with the node's address, its roles and what to do next."""
    entry = placement.get(exc.node_id, {})
    resume_from = f"the checkpoint {checkpoint}" if checkpoint is not None else "the start (no checkpoint yet)"
    resume = (
        f"the run stopped {stopped_at}; bring the node (or one with the same resources) back and rerun with "
        f"runner.resume=auto to continue from {resume_from}"
    )
    roles = describe_roles(entry["workers"]) if entry else "no worker of this run"
    return NodeLostError(exc.node_id, entry.get("ip"), roles, resume)


def check_shared_log_path(groups: Any, placement: dict[str, dict], log_path: Path, get: Callable) -> None:
    """Every actor rank sees a file the driver writes into ``log_path``; else one :class:`ClusterError` line."""
    token = log_path / f".shared-fs-check-{uuid.uuid4().hex}"
    token.write_text("written by the driver\n")
    try:
        seen = get([actor.sees.remote(str(token)) for actor in groups.actors])
    finally:
        token.unlink(missing_ok=True)
    blind = [rank for rank, ok in enumerate(seen) if not ok]
    if not blind:
        return
    nodes = {
        node: entry["ip"] for node, entry in placement.items() if set(entry["workers"].get("actor", [])) & set(blind)
    }
    where = ", ".join(f"{node[:12]} ({ip})" for node, ip in nodes.items())
    raise ClusterError(
        f"runner.logger.log_path {log_path} is not visible from actor rank(s) {blind} on node(s) {where}: the actor "
        "ranks write checkpoints there and the driver completes them, so it must be on a filesystem shared by the "
        "driver's node and every actor node (an NFS mount, for example; docs/reproducing.md)"
    )
