"""Which worker feeds which when env, rollout and actor world sizes differ (docs/architecture.md, "Placement").

The training envs of one global step are numbered ``0 … n-1`` along the env axis: env worker ``e`` holds
``n / E`` consecutive envs, split into ``S`` pipeline stages (env *shards* ``e·S … e·S + S-1``). With ``E`` env
workers, ``R`` rollout workers and ``A`` actor ranks:

* env worker ``e`` is served by rollout worker ``e // (E / R)`` (``R`` divides ``E``), so rollout worker ``r``
  holds the envs of env workers ``r·E/R … (r+1)·E/R - 1``, in env order;
* actor rank ``a`` trains on envs ``[a·n/A, (a+1)·n/A)``, cut from the batches of the rollout workers that hold
  them (:class:`ActorShard`); ``A`` divides the number of GRPO groups, so no group is split.

Only the number of env shards (``E·S``) decides which init states and sampling noise an env gets, so two
layouts with the same ``E·S`` (e.g. 4 env / 2 rollout / 1 actor and 1 / 1 / 1 with 4 stages) collect the same
batch and, with the same actor world size, train the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass


class ReshardError(ValueError):
    """World sizes whose env ranges cannot be paired."""


@dataclass(frozen=True)
class ActorShard:
    """What one actor rank trains on: the batches of rollout ranks ``sources`` (in order, concatenated along the
    env axis), envs ``[start, stop)`` of that concatenation."""

    sources: tuple[int, ...]
    start: int
    stop: int


def rollout_rank_of_env(env_rank: int, env_world: int, rollout_world: int) -> int:
    """The rollout worker that serves env worker ``env_rank``."""
    if env_world % rollout_world:
        raise ReshardError(f"{env_world} env workers cannot be shared evenly by {rollout_world} rollout workers")
    return env_rank // (env_world // rollout_world)


def actor_shards(num_envs: int, rollout_world: int, actor_world: int, group_size: int = 1) -> list[ActorShard]:
    """One :class:`ActorShard` per actor rank for ``num_envs`` training envs held by ``rollout_world`` workers.

    Raises :class:`ReshardError` when the envs do not split evenly over the rollout workers, or an actor rank's
    range would cut a GRPO group of ``group_size`` consecutive envs.
    """
    if num_envs % rollout_world:
        raise ReshardError(f"{num_envs} envs cannot be split evenly over {rollout_world} rollout workers")
    if num_envs % (actor_world * group_size):
        raise ReshardError(
            f"{num_envs // group_size} GRPO groups of {group_size} envs cannot be split evenly over "
            f"{actor_world} actor ranks (a group never spans two ranks)"
        )
    per_rollout, per_actor = num_envs // rollout_world, num_envs // actor_world
    shards = []
    for rank in range(actor_world):
        lo, hi = rank * per_actor, (rank + 1) * per_actor
        sources = tuple(range(lo // per_rollout, (hi - 1) // per_rollout + 1))
        offset = sources[0] * per_rollout
        shards.append(ActorShard(sources, lo - offset, hi - offset))
    return shards
