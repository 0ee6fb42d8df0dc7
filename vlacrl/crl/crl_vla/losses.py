"""CRL-VLA loss terms and diagnostics — pure torch, unweighted (the method multiplies by α, β, η).

Total (minimised): ``L = L_RL + α·L_KL + β·L_GCV + η·L_MC`` with

* ``L_KL  = E_{B_old}[ KL(π_old(·|s,g) ‖ π(·|s,g)) ]``       — :func:`kl_old`
* ``L_GCV = E_{B_old}[ (V_frozen(s,g) − V_old)² ]``           — :func:`value_anchor_loss`
* ``L_MC  = E_{B_new}[ (V_MC(s,g) − G)² ]``                   — :func:`mc_value_loss`, G from :func:`mc_returns`

plus ``M = max |A|`` (:func:`max_abs_advantage`) and the PPO early-stop test on the sampled KL
(:func:`approx_kl`, :func:`kl_early_stop`). Everything reduces in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_old(
    old_logits: torch.Tensor,
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean per-token ``KL(π_old ‖ π) = Σ_a p_old(a) (log p_old(a) − log p(a))``.

    Args:
        old_logits: [B, T, A] logits of π_old (detached), e.g. the 56 × 256 action-id logits recorded at the
            task boundary. logits: [B, T, A] current logits (gradient flows into them).
        temperature: both distributions are ``softmax(z / temperature)`` (the sampling temperature).
        mask: optional [B, T] bool/float weights of the tokens to average (default: all B·T tokens).

    Returns:
        0-dim float32 tensor (nats per token); 0 when ``B = 0`` or the mask is empty.
    """
    if old_logits.shape != logits.shape:
        raise ValueError(f"old logits {tuple(old_logits.shape)} and logits {tuple(logits.shape)} differ")
    old_logp = F.log_softmax(old_logits.detach().float() / temperature, dim=-1)
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    per_token = (old_logp.exp() * (old_logp - logp)).sum(dim=-1)  # [B, T]
    return _masked_mean(per_token, mask)


def value_anchor_loss(frozen_values: torch.Tensor, old_values: torch.Tensor) -> torch.Tensor:
    """``mean((V_frozen − V_old)²)`` over [B]; ``old_values`` are targets (detached). 0 when B = 0.

    ``frozen_values`` come from the frozen head on the current backbone, so the gradient reaches only the
    backbone (the frozen head has ``requires_grad = False``).
    """
    return _masked_mean((frozen_values.float() - old_values.detach().float().to(frozen_values.device)).square())


def mc_value_loss(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``mean((V_MC − G)²)`` over the valid samples: values/returns [B] (or [B, 1]), mask [B] bool or None."""
    error = values.float().reshape(-1) - returns.detach().float().reshape(-1).to(values.device)
    return _masked_mean(error.square(), None if mask is None else mask.reshape(-1))


def mc_returns(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo discounted returns per chunk step, no bootstrap: [N, M, 1] float32.

    Args:
        rewards: [N, M, C] per env sub-step; summed over the chunk (``r_n = Σ_c rewards[n, :, c]``).
        dones: [N+1, M, C] bool, entry 0 = the reset batch; ``d_{n+1} = any_c dones[n+1, :, c]`` (the episode
            ended during chunk n).
        gamma: discount per chunk step (one decision = one chunk, as ``reward_type: chunk_level`` GAE).

    ``G_n = r_n + γ (1 − d_{n+1}) G_{n+1}``, ``G_N = 0`` (a trajectory cut by the rollout end is not bootstrapped).
    """
    n = rewards.shape[0]
    if dones.shape[0] != n + 1 or dones.shape[1:] != rewards.shape[1:]:
        raise ValueError(f"dones {tuple(dones.shape)} must be [N+1, M, C] for rewards {tuple(rewards.shape)}")
    chunk_rewards = rewards.float().sum(dim=-1)  # [N, M]
    not_done = (~dones.bool().any(dim=-1)).float()  # [N+1, M]
    out = torch.zeros_like(chunk_rewards)
    running = torch.zeros_like(chunk_rewards[0])
    for step in range(n - 1, -1, -1):
        running = chunk_rewards[step] + gamma * not_done[step + 1] * running
        out[step] = running
    return out.unsqueeze(-1)


def max_abs_advantage(advantages: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """``max |A|`` over the valid entries (``mask`` broadcastable bool), 0.0 when there are none."""
    values = advantages.detach().float().abs()
    if mask is not None:
        values = values[mask.bool().expand_as(values)]
    return float(values.max()) if values.numel() else 0.0


def approx_kl(logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sampled ``KL(π_behaviour ‖ π) ≈ mean(log π_behaviour(a) − log π(a))`` over the valid tokens (detached).

    logprobs/old_logprobs [B, T]; mask [B, T] bool (or None).
    """
    diff = old_logprobs.detach().float().to(logprobs.device) - logprobs.detach().float()
    return _masked_mean(diff, mask)


def kl_early_stop(kl: float, target_kl: float | None) -> bool:
    """True when the sampled KL exceeds the target ``d_targ`` (PPO early stopping); never when the target is None."""
    return target_kl is not None and float(kl) > float(target_kl)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (all entries when None); a 0-dim zero (keeping the graph) when empty."""
    if mask is None:
        return values.mean() if values.numel() else values.sum()
    weights = mask.to(values.device, torch.float32).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)
