"""Tensor layouts of the training batch: rollout → actor reshape, time flattening, shuffling, update schedule.

Symbols (spec notation): ``E`` rollout epochs, ``N`` chunk steps per episode, ``b`` envs of one rollout worker,
``M = E·b`` trajectory columns on one actor rank, ``C`` action-chunk length, ``D`` action dim.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

ENV_INFO_PREFIX = "env_info/"
# Keys whose time axis has one extra entry (N + 1): the last entry is dropped before flattening.
TRAILING_STEP_KEYS = ("dones", "prev_values")
LOGPROB_TYPES = ("token_level", "action_level", "chunk_level")


def flatten_steps(x: torch.Tensor) -> torch.Tensor:
    """Chunk-major ``[X, M, C]`` → env-step-major ``[X·C, M]``: row ``x·C + c`` is sub-step ``c`` of chunk ``x``."""
    if x.dim() != 3:
        raise ValueError(f"expected a [X, M, C] tensor, got shape {tuple(x.shape)}")
    return x.transpose(1, 2).reshape(x.shape[0] * x.shape[2], x.shape[1])


def unflatten_steps(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Inverse of :func:`flatten_steps`: ``[X·C, M]`` → ``[X, M, C]`` with ``C = chunk``."""
    if x.dim() != 2 or x.shape[0] % chunk != 0:
        raise ValueError(f"expected a [X·{chunk}, M] tensor, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0] // chunk, chunk, x.shape[1]).transpose(1, 2)


def rollout_to_actor_layout(x: torch.Tensor, rollout_epoch: int) -> torch.Tensor:
    """Epoch-stacked rollout tensor ``[E·X, b, …]`` → actor layout ``[X, E·b, …]`` (X = N or N + 1).

    Viewed as ``[E, X, b, …]``, the first two axes are swapped and ``(E, b)`` merged, so actor column
    ``e·b + j`` is env ``j`` of rollout epoch ``e``.
    """
    if x.dim() < 2 or rollout_epoch < 1 or x.shape[0] % rollout_epoch != 0:
        raise ValueError(f"cannot split the leading axis of shape {tuple(x.shape)} into {rollout_epoch} rollout epochs")
    steps = x.shape[0] // rollout_epoch
    y = x.reshape(rollout_epoch, steps, *x.shape[1:]).transpose(0, 1)
    return y.reshape(steps, rollout_epoch * x.shape[1], *x.shape[2:])


def rollout_batch_to_actor_layout(batch: Mapping[str, torch.Tensor], rollout_epoch: int) -> dict[str, torch.Tensor]:
    """Apply :func:`rollout_to_actor_layout` to every key except ``env_info/*`` (per-episode, left as is)."""
    return {
        key: value if key.startswith(ENV_INFO_PREFIX) else rollout_to_actor_layout(value, rollout_epoch)
        for key, value in batch.items()
    }


def _num_envs(batch: Mapping[str, torch.Tensor]) -> int:
    """Envs ``b`` of a rollout-layout batch (axis 1 of its step tensors)."""
    for key, value in batch.items():
        if not key.startswith(ENV_INFO_PREFIX):
            return int(value.shape[1])
    raise ValueError("a rollout batch without step tensors has no env axis")


def _env_info_by_env(value: torch.Tensor, num_envs: int) -> torch.Tensor:
    """``env_info/*`` ``[E·b]`` (epoch-major) → ``[E, b]``."""
    if value.shape[0] % num_envs:
        raise ValueError(f"env_info of length {value.shape[0]} does not hold whole epochs of {num_envs} envs")
    return value.reshape(value.shape[0] // num_envs, num_envs, *value.shape[1:])


def concat_env_ranges(parts: list[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Rollout-layout batches of consecutive env ranges → one batch over their union, env order kept.

    Step tensors ``[E·X, b_i, …]`` are concatenated along the env axis (1); ``env_info/*`` ``[E·b_i]`` per epoch,
    so that the result is what one worker holding all the envs would have sent (``[E·Σb_i]``, epoch-major).
    """
    if len(parts) == 1:
        return dict(parts[0])
    sizes = [_num_envs(part) for part in parts]
    out = {}
    for key in parts[0]:
        if key.startswith(ENV_INFO_PREFIX):
            joined = torch.cat([_env_info_by_env(p[key], b) for p, b in zip(parts, sizes)], dim=1)
            out[key] = joined.reshape(-1, *joined.shape[2:])
        else:
            out[key] = torch.cat([part[key] for part in parts], dim=1)
    return out


def slice_env_range(batch: Mapping[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
    """Envs ``[start, stop)`` of a rollout-layout batch (step tensors on axis 1, ``env_info/*`` per epoch)."""
    num_envs = _num_envs(batch)
    if not 0 <= start < stop <= num_envs:
        raise ValueError(f"env range [{start}, {stop}) outside the batch's {num_envs} envs")
    if (start, stop) == (0, num_envs):
        return dict(batch)
    out = {}
    for key, value in batch.items():
        if key.startswith(ENV_INFO_PREFIX):
            out[key] = _env_info_by_env(value, num_envs)[:, start:stop].reshape(-1, *value.shape[1:])
        else:
            out[key] = value[:, start:stop]
    return out


def to_chunk_level(rewards: torch.Tensor, dones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``reward_type: chunk_level``: rewards ``[N, M, C]`` → summed ``[N, M, 1]``; dones ``[N+1, M, C]`` → last
    sub-step ``[N+1, M, 1]``."""
    return rewards.sum(dim=-1, keepdim=True), dones[..., -1:]


def flatten_and_shuffle(
    batch: Mapping[str, torch.Tensor],
    *,
    generator: torch.Generator | None = None,
    shuffle: bool = True,
) -> dict[str, torch.Tensor]:
    """Actor-layout batch ``{key: [N(+1), M, …]}`` → per-sample batch ``{key: [N·M, …]}``, one shared permutation.

    ``dones`` and ``prev_values`` lose their last time entry first (``[N+1, …]`` → ``[N, …]``); ``env_info/*``
    keys are not part of the training samples and are left out. Sample ``n·M + m`` (before shuffling) is chunk
    step ``n`` of trajectory column ``m``. The same ``torch.randperm(N·M, generator=generator)`` reorders every key.
    """
    flat: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        if key.startswith(ENV_INFO_PREFIX):
            continue
        steps = value[:-1] if key in TRAILING_STEP_KEYS else value
        flat[key] = steps.reshape(steps.shape[0] * steps.shape[1], *steps.shape[2:])
    sizes = {key: value.shape[0] for key, value in flat.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"training keys disagree on N·M after flattening: {sizes}")
    if not shuffle or not flat:
        return flat
    size = next(iter(sizes.values()))
    perm = torch.randperm(size, generator=generator)
    return {key: value[perm.to(value.device)] for key, value in flat.items()}


@dataclass(frozen=True)
class UpdateSchedule:
    """One pass over the rollout: ``num_minibatches`` optimiser steps of ``num_microbatches`` backward passes.

    ``num_microbatches`` is also the gradient-accumulation count (each micro-batch loss is divided by it).
    """

    rollout_size: int
    minibatch_size: int
    micro_batch_size: int
    num_minibatches: int
    num_microbatches: int


def make_update_schedule(
    rollout_size: int, global_batch_size: int, micro_batch_size: int, actor_world_size: int
) -> UpdateSchedule:
    """Split ``rollout_size = N·M`` samples of one actor rank into mini-batches of ``global_batch_size / ws``
    samples, each into micro-batches of ``micro_batch_size``; raises ``ValueError`` on any non-divisibility."""
    if min(rollout_size, global_batch_size, micro_batch_size, actor_world_size) < 1:
        raise ValueError("rollout size, global_batch_size, micro_batch_size and actor world size must be positive")
    if global_batch_size % (micro_batch_size * actor_world_size) != 0:
        raise ValueError(
            f"actor.global_batch_size={global_batch_size} is not divisible by "
            f"actor.micro_batch_size={micro_batch_size} x actor world size {actor_world_size}"
        )
    per_rank = global_batch_size // actor_world_size
    if rollout_size % per_rank != 0:
        raise ValueError(
            f"{rollout_size} samples per actor rank are not divisible by the per-rank mini-batch "
            f"{per_rank} (= actor.global_batch_size {global_batch_size} / actor world size {actor_world_size})"
        )
    return UpdateSchedule(
        rollout_size=rollout_size,
        minibatch_size=per_rank,
        micro_batch_size=micro_batch_size,
        num_minibatches=rollout_size // per_rank,
        num_microbatches=per_rank // micro_batch_size,
    )


def _split(batch: Mapping[str, torch.Tensor], size: int, total: int) -> Iterator[dict[str, torch.Tensor]]:
    for key, value in batch.items():
        if value.shape[0] != total:
            raise ValueError(f"key {key!r} has {value.shape[0]} samples, expected {total}")
    for start in range(0, total, size):
        yield {key: value[start : start + size] for key, value in batch.items()}


def iter_minibatches(batch: Mapping[str, torch.Tensor], schedule: UpdateSchedule) -> Iterator[dict[str, torch.Tensor]]:
    """Contiguous mini-batches ``{key: [minibatch_size, …]}`` of a flattened (shuffled) batch, in order."""
    return _split(batch, schedule.minibatch_size, schedule.rollout_size)


def iter_microbatches(
    minibatch: Mapping[str, torch.Tensor], schedule: UpdateSchedule
) -> Iterator[dict[str, torch.Tensor]]:
    """Contiguous micro-batches ``{key: [micro_batch_size, …]}`` of one mini-batch, in order."""
    return _split(minibatch, schedule.micro_batch_size, schedule.minibatch_size)


def shape_loss_inputs(
    samples: Mapping[str, torch.Tensor | None], *, action_dim: int, logprob_type: str, entropy_type: str
) -> dict[str, torch.Tensor | None]:
    """Reshape a micro-batch for the loss according to ``algorithm.logprob_type`` / ``entropy_type``.

    Inputs (mb samples): ``logprobs``, ``old_logprobs``, ``entropy`` ``[mb, C·D]``; ``advantages``,
    ``loss_mask``, ``loss_mask_sum`` ``[mb, C]`` (any may be ``None`` except the first three keys).
    ``token_level``: log-probs ``[mb, C, D]``, advantages and masks ``[mb, C, 1]``.
    ``action_level``: log-probs summed over D → ``[mb, C]``. ``chunk_level``: log-probs summed → ``[mb]``,
    advantages summed → ``[mb]``. Entropy follows ``entropy_type`` the same way (token level only together
    with token-level log-probs). Other keys pass through unchanged.
    """
    if logprob_type not in LOGPROB_TYPES or entropy_type not in LOGPROB_TYPES:
        raise ValueError(f"logprob_type/entropy_type must be one of {LOGPROB_TYPES}, got {logprob_type}/{entropy_type}")
    out = dict(samples)
    mb = out["logprobs"].shape[0]
    for key in ("logprobs", "old_logprobs"):
        tokens = out[key].reshape(mb, -1, action_dim)
        out[key] = {"token_level": tokens, "action_level": tokens.sum(-1), "chunk_level": tokens.sum((-2, -1))}[
            logprob_type
        ]
    if logprob_type == "token_level":
        for key in ("advantages", "loss_mask", "loss_mask_sum"):
            if out.get(key) is not None:
                out[key] = out[key].unsqueeze(-1)
    elif logprob_type == "chunk_level":
        out["advantages"] = out["advantages"].sum(dim=-1)
    entropy = out.get("entropy")
    if entropy is not None:
        tokens = entropy.reshape(mb, -1, action_dim)
        if entropy_type == "token_level" and logprob_type == "token_level":
            out["entropy"] = tokens
        elif entropy_type == "action_level":
            out["entropy"] = tokens.sum(-1)
        elif entropy_type == "chunk_level":
            out["entropy"] = entropy.sum(-1)
    return out
