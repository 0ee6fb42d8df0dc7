"""Loss mask "ignore after done" (docs/algorithms.md) and the GRPO reward-group filter (docs/algorithms.md).

Shapes use the actor layout: ``N`` chunk steps, ``M = E·b`` trajectory columns, ``C`` sub-steps per chunk.
"""

from __future__ import annotations

import torch

from vlacrl.algorithms.layout import flatten_steps, unflatten_steps


def step_dones(dones: torch.Tensor) -> torch.Tensor:
    """Per-env-step done flags: ``dones [N+1, M, C]`` → ``[N·C + 1, M]`` bool.

    Entry 0 of ``dones`` is the reset batch (all False). After flattening time, the last ``N·C + 1`` rows are
    kept: row 0 is the last sub-step of the reset entry, row ``s + 1`` is "done after env step s".
    """
    if dones.dim() != 3 or dones.shape[0] < 2:
        raise ValueError(f"dones must be [N+1, M, C] with N >= 1, got shape {tuple(dones.shape)}")
    n_steps = (dones.shape[0] - 1) * dones.shape[2]
    return flatten_steps(dones.bool())[-(n_steps + 1) :]


def compute_loss_mask(dones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid steps of each trajectory: up to and including the first done.

    Args:
        dones: ``[N+1, M, C]`` bool, entry 0 = reset batch.

    Returns:
        ``loss_mask [N, M, C]`` bool — step ``s`` is valid iff no done occurred in rows ``0..s`` of
        :func:`step_dones` (i.e. before step ``s``; the success step itself is valid);
        ``loss_mask_sum [N, M, C]`` int64 — the number of valid steps of the column's trajectory, broadcast.
    """
    rows = step_dones(dones)
    valid = rows.long().cumsum(dim=0)[:-1] == 0  # [N·C, M]
    loss_mask = unflatten_steps(valid, dones.shape[2])
    loss_mask_sum = loss_mask.sum(dim=(0, 2), keepdim=True).expand_as(loss_mask).contiguous()
    return loss_mask, loss_mask_sum


def trajectory_rewards(rewards: torch.Tensor, loss_mask: torch.Tensor | None) -> torch.Tensor:
    """Total reward of each trajectory over its valid steps: ``rewards [N, M, C]`` → ``[M]`` (5 or 0 on LIBERO)."""
    if loss_mask is not None:
        rewards = rewards * loss_mask
    return rewards.sum(dim=(0, 2))


def group_keep_mask(
    rewards: torch.Tensor,
    loss_mask: torch.Tensor | None,
    group_size: int,
    lower_bound: float = 0.5,
    upper_bound: float = 4.5,
) -> torch.Tensor:
    """Which GRPO groups survive the filter: ``[M // G]`` bool.

    Group ``g`` is columns ``g·G … g·G + G − 1`` (the G envs reset to one init state in one rollout epoch).
    It is kept iff ``lower_bound <= mean(trajectory_rewards over the group) <= upper_bound``.
    """
    num_columns = rewards.shape[1]
    if group_size < 1 or num_columns % group_size != 0:
        raise ValueError(f"{num_columns} trajectory columns are not divisible by group_size {group_size}")
    group_mean = trajectory_rewards(rewards, loss_mask).reshape(-1, group_size).mean(dim=1)
    return (group_mean >= lower_bound) & (group_mean <= upper_bound)


def apply_group_filter(
    rewards: torch.Tensor,
    loss_mask: torch.Tensor | None,
    group_size: int,
    lower_bound: float = 0.5,
    upper_bound: float = 4.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward-group filter (``algorithm.filter_rewards``), run after the loss mask and before the advantages.

    Args:
        rewards: ``[N, M, C]`` float, per env step.
        loss_mask: ``[N, M, C]`` bool from :func:`compute_loss_mask`, or ``None`` (all steps valid).

    Returns:
        ``loss_mask [N, M, C]`` bool with every step of a dropped group set to False (``loss_mask_sum`` is
        deliberately not changed, as in the reference), and the per-group keep flags ``[M // G]``.
    """
    keep = group_keep_mask(rewards, loss_mask, group_size, lower_bound, upper_bound)
    columns = keep.repeat_interleave(group_size).view(1, -1, 1).expand_as(rewards)
    new_mask = columns if loss_mask is None else columns & loss_mask.bool()
    return new_mask.contiguous(), keep
