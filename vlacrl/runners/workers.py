"""Create the Ray worker groups of a run (actor, rollout, env; eval envs on demand)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from vlacrl.config.validate import ValidatedSizes
from vlacrl.distributed.cluster import WorkerSlot, reserve
from vlacrl.workers.actor_worker import ActorWorker
from vlacrl.workers.env_worker import EnvWorker
from vlacrl.workers.rollout_worker import RolloutWorker

logger = logging.getLogger(__name__)


@dataclass
class WorkerGroups:
    """Ray actor handles, index = rank."""

    actors: list = field(default_factory=list)
    rollouts: list = field(default_factory=list)
    envs: list = field(default_factory=list)
    eval_envs: list = field(default_factory=list)
    slots: dict[str, list[WorkerSlot]] = field(default_factory=dict)
    placement: dict[str, dict] = field(default_factory=dict)  # node id → {"ip", "workers"} (runners.nodes)

    def all(self) -> list:
        return [*self.actors, *self.rollouts, *self.envs, *self.eval_envs]

    def member(self, actor_id: str) -> tuple[str, int] | None:
        """Role label and rank of the worker whose Ray actor id (hex) is ``actor_id``; None if not ours."""
        roles = (("actor", self.actors), ("rollout", self.rollouts), ("env", self.envs), ("eval env", self.eval_envs))
        for role, group in roles:
            for rank, handle in enumerate(group):
                handle_id = getattr(handle, "_actor_id", None)  # ActorHandle keeps its id privately
                if handle_id is not None and handle_id.hex() == actor_id:
                    return role, rank
        return None


def _remote(cls, slot: WorkerSlot, name: str):
    import ray

    return ray.remote(cls).options(name=name, **slot.ray_options)


def create_env_group(cfg: dict[str, Any], slots: list[WorkerSlot], split: str) -> list:
    """One EnvWorker per env rank for ``env.<split>`` (train or eval)."""
    return [create_env_worker(cfg, slot, len(slots), split) for slot in slots]


def create_env_worker(cfg: dict[str, Any], slot: WorkerSlot, world: int, split: str):
    """The EnvWorker of env rank ``slot.rank`` (also used to replace one that died)."""
    stages = int(cfg["rollout"].get("pipeline_stage_num", 1)) if split == "train" else 1
    video = cfg["env"][split].get("video_cfg") or {}
    return _remote(EnvWorker, slot, f"env_{split}_{slot.rank}").remote(
        cfg["env"][split],
        slot.rank,
        world,
        stage_num=stages,
        chunk=int(cfg["actor"]["model"]["num_action_chunks"]),
        use_gpu=slot.ray_options.get("num_gpus", 0) > 0,
        save_video_rank=video.get("save_rank", 0),
    )


def create_groups(cfg: dict[str, Any], sizes: ValidatedSizes, *, train: bool, timeout_s: float) -> WorkerGroups:
    """Reserve resources and start the workers (actors only when ``train``); returns their handles."""
    slots = reserve(sizes.placement, timeout_s=timeout_s, node_resources=cfg["cluster"].get("node_resources"))
    groups = WorkerGroups(slots=slots)
    if train:
        world = len(slots["actor"])
        groups.actors = [
            _remote(ActorWorker, s, f"actor_{s.rank}").remote(cfg, s.rank, world, s.ray_options["num_gpus"] > 0)
            for s in slots["actor"]
        ]
    world = len(slots["rollout"])
    groups.rollouts = [
        _remote(RolloutWorker, s, f"rollout_{s.rank}").remote(cfg, s.rank, world, s.ray_options["num_gpus"] > 0)
        for s in slots["rollout"]
    ]
    if train:
        groups.envs = create_env_group(cfg, slots["env"], "train")
    logger.info("workers started: %d actor, %d rollout, %d env", len(groups.actors), world, len(groups.envs))
    return groups
