"""Where each worker group runs: ``cluster.component_placement`` → world size and GPUs per component.

The config maps comma-separated component names to a placement, as in the reference::

    component_placement:
      actor,env,rollout: all        # one worker per GPU, all three colocated on every GPU
    # or disaggregated:
      actor: 0-3                    # GPUs 0..3
      rollout,env: 4-7

Placements: ``all`` (every GPU; without GPUs, ``cpu_world_size`` CPU workers), a range ``a-b``, a
list ``a,b,c`` of GPU ids, or ``cpu:N`` (N CPU workers, also on GPU machines).

World sizes may differ between components (e.g. ``env: cpu:4``, ``rollout: cpu:2``, ``actor: cpu:1``): each
rollout worker serves ``E / R`` env workers, and the actor ranks split the batch by env ranges
(``vlacrl.distributed.resharding``).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPONENTS = ("actor", "rollout", "env")


class PlacementError(ValueError):
    """The placement cannot be realised on this cluster."""


@dataclass(frozen=True)
class ComponentPlacement:
    """One worker group: ``world_size`` workers, worker i on ``gpu_ids[i]`` (None: CPU)."""

    component: str
    world_size: int
    gpu_ids: tuple[int, ...] | None

    @property
    def uses_gpu(self) -> bool:
        return self.gpu_ids is not None


def _parse_gpu_ids(spec: str, num_gpus: int, component: str) -> tuple[int, ...]:
    if "-" in spec:
        lo, hi = (int(x) for x in spec.split("-", 1))
        ids = tuple(range(lo, hi + 1))
    else:
        ids = tuple(int(x) for x in spec.split(","))
    if not ids:
        raise PlacementError(f"empty GPU list for {component}")
    if num_gpus == 0:
        raise PlacementError(
            f"{component} is placed on GPUs {spec} but this machine has no GPUs; "
            "use component_placement {actor,env,rollout: all} (CPU workers) or cpu:N"
        )
    bad = [i for i in ids if not 0 <= i < num_gpus]
    if bad:
        raise PlacementError(f"{component} asks for GPU(s) {bad}, but the cluster has GPUs 0..{num_gpus - 1}")
    return ids


def _parse_one(value, component: str, num_gpus: int, cpu_world_size: int) -> ComponentPlacement:
    spec = str(value).strip().lower()
    if spec == "all":
        if num_gpus == 0:
            return ComponentPlacement(component, cpu_world_size, None)
        return ComponentPlacement(component, num_gpus, tuple(range(num_gpus)))
    if spec.startswith("cpu:"):
        count = int(spec[4:])
        if count < 1:
            raise PlacementError(f"{component}: cpu:N needs N >= 1")
        return ComponentPlacement(component, count, None)
    try:
        ids = _parse_gpu_ids(spec, num_gpus, component)
    except ValueError as exc:
        if isinstance(exc, PlacementError):
            raise
        raise PlacementError(f"cannot parse placement {value!r} of {component}; use all, a-b, a,b,c or cpu:N") from exc
    return ComponentPlacement(component, len(ids), ids)


def resolve_placement(
    component_placement: dict, num_gpus: int, cpu_world_size: int = 1
) -> dict[str, ComponentPlacement]:
    """Resolve the config mapping into one :class:`ComponentPlacement` per component."""
    result: dict[str, ComponentPlacement] = {}
    for names, value in dict(component_placement).items():
        for name in (n.strip() for n in str(names).split(",")):
            if name not in COMPONENTS:
                raise PlacementError(f"unknown component {name!r} in component_placement; components: {COMPONENTS}")
            if name in result:
                raise PlacementError(f"component {name!r} is placed twice")
            result[name] = _parse_one(value, name, num_gpus, cpu_world_size)
    missing = [c for c in COMPONENTS if c not in result]
    if missing:
        raise PlacementError(f"component_placement does not place {missing}")
    env_ws, rollout_ws = result["env"].world_size, result["rollout"].world_size
    if env_ws % rollout_ws:  # rollout worker r serves env workers r·E/R … (r+1)·E/R - 1 (resharding.py)
        raise PlacementError(
            f"{env_ws} env workers cannot be shared evenly by {rollout_ws} rollout workers "
            "(the env world size must be a multiple of the rollout world size)"
        )
    return result
