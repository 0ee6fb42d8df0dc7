"""GRPO for embodied rollouts (docs/algorithms.md advantage token-level policy loss).

Actor layout: ``N`` chunk steps, ``M = E·b`` trajectory columns, ``C`` sub-steps per chunk, ``D`` action dim,
``G`` group size. Micro-batches hold ``mb`` samples, each one chunk step of one trajectory.
"""

from __future__ import annotations

import torch

from vlacrl.algorithms.layout import flatten_steps, unflatten_steps
from vlacrl.algorithms.masks import step_dones


def trajectory_scores(rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """Score of each trajectory by backward accumulation over env steps.

    ``score = 0``; for ``s = N·C − 1 … 0``: ``score = score · (1 − done_after_step_s) + r_s``. This is the sum
    of rewards up to and including the first done (5 if the episode succeeded before truncation, else 0).

    Args:
        rewards: ``[N, M, C]`` float per env step. dones: ``[N+1, M, C]`` bool (entry 0 = reset batch).

    Returns:
        ``[M]`` scores in the dtype of ``rewards``.
    """
    if dones.shape[0] != rewards.shape[0] + 1 or dones.shape[1:] != rewards.shape[1:]:
        raise ValueError(f"dones {tuple(dones.shape)} must be [N+1, M, C] for rewards {tuple(rewards.shape)}")
    flat_rewards = flatten_steps(rewards)  # [N·C, M]
    keep = (~step_dones(dones)).to(rewards.dtype)  # [N·C + 1, M]
    score = torch.zeros(rewards.shape[1], dtype=rewards.dtype, device=rewards.device)
    for step in range(flat_rewards.shape[0] - 1, -1, -1):
        score = score * keep[step + 1] + flat_rewards[step]
    return score


def group_normalize(scores: torch.Tensor, group_size: int, epsilon: float = 1e-6) -> torch.Tensor:
    """``(s − mean_g) / (std_g + epsilon)`` over consecutive groups of ``group_size``; ``std`` is unbiased (N − 1).

    ``scores [M]`` → ``[M]``. A group of equal scores gets advantage 0.
    """
    if group_size < 2 or scores.shape[0] % group_size != 0:
        raise ValueError(f"{scores.shape[0]} scores cannot be normalised in groups of {group_size} (need G >= 2)")
    grouped = scores.reshape(-1, group_size)
    mean = grouped.mean(dim=-1, keepdim=True)
    std = grouped.std(dim=-1, keepdim=True)
    return ((grouped - mean) / (std + epsilon)).reshape(-1)


def compute_grpo_advantages(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    loss_mask: torch.Tensor | None = None,
    *,
    group_size: int = 8,
    normalize_advantages: bool = True,
    epsilon: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO advantages (``adv_type: embodied_grpo``).

    Args:
        rewards: ``[N, M, C]`` float. dones: ``[N+1, M, C]`` bool. loss_mask: ``[N, M, C]`` bool or ``None``.

    Returns:
        ``(advantages, returns)``, both ``[N, M, C]`` (the same tensor, as in the reference): the normalised
        trajectory score broadcast to every step and multiplied by the loss mask (0 on masked steps).
    """
    scores = trajectory_scores(rewards, dones)
    adv = group_normalize(scores, group_size, epsilon) if normalize_advantages else scores
    flat = adv.unsqueeze(0).expand(rewards.shape[0] * rewards.shape[2], -1)  # [N·C, M]
    if loss_mask is not None:
        if loss_mask.shape != rewards.shape:
            raise ValueError(f"loss_mask {tuple(loss_mask.shape)} must match rewards {tuple(rewards.shape)}")
        flat = flat * flatten_steps(loss_mask)
    advantages = unflatten_steps(flat, rewards.shape[2]).contiguous()
    return advantages, advantages


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum(values · mask) / sum(mask)``; the denominator counts entries of the (unbroadcast) ``mask``.

    With a token-level ``values [mb, C, D]`` and ``mask [mb, C, 1]`` this is the D-token sum averaged over
    valid sub-steps. If nothing is valid it returns the (zero) numerator, like the reference.
    """
    total = (values * mask).sum()
    count = mask.sum()
    return total if count == 0 else total / count


def grpo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.28,
    loss_mask: torch.Tensor | None = None,
    loss_mask_sum: torch.Tensor | None = None,
    max_episode_steps: int | None = None,
    entropy: torch.Tensor | None = None,
    entropy_bonus: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO clipped surrogate loss (``loss_type: embodied_grpo``), token level, no KL term.

    Shapes (token level): ``logprobs``, ``old_logprobs``, ``entropy`` ``[mb, C, D]``; ``advantages``,
    ``loss_mask`` (bool), ``loss_mask_sum`` (valid steps of the sample's trajectory) ``[mb, C, 1]``. Any
    broadcast-compatible shapes work (see :func:`~vlacrl.algorithms.layout.shape_loss_inputs`).

    ``ratio = exp(logp − logp_old)``; ``pg = max(−A·ratio, −A·clip(ratio, 1 − low, 1 + high))``. With a mask:
    ``loss = mean_all(pg / (loss_mask_sum / max_episode_steps) · loss_mask)`` — the mean runs over ALL
    ``mb·C·D`` entries including masked ones. Without a mask: ``loss = mean(pg)``. Then
    ``loss −= entropy_bonus · entropy_loss`` where ``entropy_loss`` is the masked mean of ``entropy`` if
    ``entropy_bonus > 0``, else 0.

    Metrics (python floats, reference names): ``actor/raw_loss`` (the returned loss), ``actor/policy_loss``,
    ``actor/ppo_kl = mean_all(−logratio · loss_mask)``, ``actor/entropy_loss`` and ``actor/policy_clipfrac``,
    which — as in the reference — compares each token's *clipped* surrogate ``−A·clip(ratio)`` with the already
    reduced scalar policy loss: ``mean_all((−A·clip(ratio) > policy_loss) · loss_mask)``. It is therefore not
    the fraction of clipped tokens; it is kept for comparability of logged curves.
    """
    logratio = logprobs - old_logprobs
    ratio = torch.exp(logratio)
    pg_unclipped = -advantages * ratio
    pg_clipped = -advantages * torch.clamp(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)
    pg = torch.max(pg_unclipped, pg_clipped)
    if loss_mask is not None:
        if loss_mask_sum is None or max_episode_steps is None:
            raise ValueError("loss_mask needs loss_mask_sum and max_episode_steps for the per-trajectory weight")
        # w = valid_steps / T_max. valid_steps >= 1 for real rollouts (step 0 is always valid); the clamp only
        # keeps a degenerate all-done input from producing 0/0 = NaN.
        weight = loss_mask_sum.to(pg.dtype).clamp(min=1) / max_episode_steps
        policy_loss = (pg / weight * loss_mask).mean()
        clipfrac = ((pg_clipped > policy_loss).float() * loss_mask).mean()
        ppo_kl = (-logratio * loss_mask).mean()
    else:
        policy_loss = pg.mean()
        clipfrac = (pg_clipped > policy_loss).float().mean()
        ppo_kl = (-logratio).mean()
    entropy_loss = torch.zeros((), dtype=policy_loss.dtype, device=policy_loss.device)
    if entropy is not None and entropy_bonus > 0:
        entropy_loss = _masked_mean(entropy, loss_mask) if loss_mask is not None else entropy.mean()
    loss = policy_loss - entropy_bonus * entropy_loss
    metrics = {
        "actor/raw_loss": loss.detach().item(),
        "actor/policy_loss": policy_loss.detach().item(),
        "actor/policy_clipfrac": clipfrac.detach().item(),
        "actor/ppo_kl": ppo_kl.detach().item(),
        "actor/entropy_loss": entropy_loss.detach().item(),
    }
    return loss, metrics
