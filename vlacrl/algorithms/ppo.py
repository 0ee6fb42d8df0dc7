"""PPO with GAE and a value head (docs/algorithms.md: ``adv_type: embodied_gae``, ``loss_type: embodied_ppo``).

Actor layout: ``N`` chunk steps, ``M`` trajectory columns, ``C`` entries per chunk (``C = 1`` after
``reward_type: chunk_level`` aggregation, which is what the OFT PPO config uses).
"""

from __future__ import annotations

import torch

from vlacrl.algorithms.layout import flatten_steps, unflatten_steps
from vlacrl.algorithms.masks import step_dones


def _normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Global ``(x − mean) / (population std + eps)``."""
    return (x - x.mean()) / (x.std(correction=0) + eps)


def compute_gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    *,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
    normalize_advantages: bool = True,
    normalize_returns: bool = False,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the flattened env-step axis (no auto-reset bootstrap).

    Args:
        rewards: ``[N, M, C]`` float. values: ``[N+1, M, C]`` float (rollout values incl. the final observation).
        dones: ``[N+1, M, C]`` bool, entry 0 = reset batch.

    With ``V`` the first ``N·C + 1`` rows of the flattened values and ``d`` the last ``N·C + 1`` rows of the
    flattened dones (``d_{s+1}`` = done after step s), backwards over ``s``:
    ``δ_s = r_s + γ·V_{s+1}·(1 − d_{s+1}) − V_s``; ``gae_s = δ_s + γ·λ·(1 − d_{s+1})·gae_{s+1}``;
    ``return_s = gae_s + V_s``; ``A_s = return_s − V_s``. Optionally ``A`` (and ``return``) are normalised with
    the global mean and population std (+ ``eps``). No loss mask is applied.

    Returns:
        ``(advantages, returns)``, both ``[N, M, C]``.
    """
    n, m, c = rewards.shape
    if values.shape != (n + 1, m, c) or dones.shape != (n + 1, m, c):
        raise ValueError(
            f"values {tuple(values.shape)} and dones {tuple(dones.shape)} must be [N+1, M, C] = {(n + 1, m, c)}"
        )
    flat_rewards = flatten_steps(rewards)  # [N·C, M]
    flat_values = flatten_steps(values)[: n * c + 1]  # [N·C + 1, M]
    not_done = (~step_dones(dones)).to(rewards.dtype)  # [N·C + 1, M]
    returns = torch.zeros_like(flat_rewards)
    gae = torch.zeros(m, dtype=rewards.dtype, device=rewards.device)
    for step in range(n * c - 1, -1, -1):
        delta = flat_rewards[step] + gamma * flat_values[step + 1] * not_done[step + 1] - flat_values[step]
        gae = delta + gamma * gae_lambda * not_done[step + 1] * gae
        returns[step] = gae + flat_values[step]
    advantages = returns - flat_values[:-1]
    if normalize_advantages:
        advantages = _normalize(advantages, eps)
    if normalize_returns:
        returns = _normalize(returns, eps)
    return unflatten_steps(advantages, c).contiguous(), unflatten_steps(returns, c).contiguous()


def huber_loss(error: torch.Tensor, delta: float) -> torch.Tensor:
    """Elementwise Huber: ``0.5·e²`` if ``|e| < delta`` else ``delta·(|e| − 0.5·delta)``."""
    abs_err = error.abs()
    return torch.where(abs_err < delta, 0.5 * error**2, delta * (abs_err - 0.5 * delta))


def ppo_actor_critic_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    values: torch.Tensor,
    prev_values: torch.Tensor,
    returns: torch.Tensor,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.28,
    value_clip: float = 0.2,
    huber_delta: float = 10.0,
    entropy: torch.Tensor | None = None,
    entropy_bonus: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped policy loss + clipped Huber value loss − entropy bonus (``loss_type: embodied_ppo``).

    Shapes: ``logprobs``, ``old_logprobs`` ``[mb, …]`` broadcast-compatible with ``advantages`` (token level:
    ``[mb, C, D]`` and ``[mb, C, 1]``); ``values``, ``prev_values`` ``[mb, K]`` (``K = 1`` chunk-level value);
    ``returns`` ``[mb, C]``; ``entropy`` any shape. All means run over every entry (no loss mask here).

    ``policy = −mean(min(r·A, clip(r, 1 − low, 1 + high)·A))``;
    ``V_clip = V_old + clip(V − V_old, −value_clip, value_clip)``;
    ``value_loss = mean(max(Huber(R − V), Huber(R − V_clip)))``;
    ``loss = policy + value_loss − entropy_bonus · mean(entropy)``.

    Metrics: ``actor/raw_loss``, ``actor/policy_loss``, ``actor/ratio`` (mean ratio), ``critic/value_loss``,
    ``critic/value_clip_ratio`` (fraction of value entries with ``|V − V_old| > value_clip``; see
    docs/algorithms.md), ``actor/entropy_loss``.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)
    policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
    delta_v = values - prev_values
    value_clipped = prev_values + delta_v.clamp(-value_clip, value_clip)
    value_loss = torch.max(huber_loss(returns - values, huber_delta), huber_loss(returns - value_clipped, huber_delta))
    value_loss = value_loss.mean()
    value_clip_ratio = (delta_v.abs() > value_clip).float().mean()
    if entropy is not None:
        entropy_loss = entropy.mean()
    else:
        entropy_loss = torch.zeros((), dtype=policy_loss.dtype, device=policy_loss.device)
    loss = policy_loss + value_loss - entropy_bonus * entropy_loss
    metrics = {
        "actor/raw_loss": loss.detach().item(),
        "actor/policy_loss": policy_loss.detach().item(),
        "actor/ratio": ratio.mean().detach().item(),
        "critic/value_loss": value_loss.detach().item(),
        "critic/value_clip_ratio": value_clip_ratio.detach().item(),
        "actor/entropy_loss": entropy_loss.detach().item(),
    }
    return loss, metrics
