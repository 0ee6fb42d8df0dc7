"""Registries of advantage and loss functions (keyed by the reference's names) and the algorithm config.

Registered advantage functions take ``(cfg, *, rewards, dones, loss_mask, values)``; registered loss functions
take ``(cfg, *, max_episode_steps, **micro_batch)`` with tensors already shaped by
:func:`~vlacrl.algorithms.layout.shape_loss_inputs`. Use :func:`compute_advantages_and_returns` and
:func:`compute_actor_loss` as the entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from vlacrl.algorithms.grpo import compute_grpo_advantages, grpo_policy_loss
from vlacrl.algorithms.layout import LOGPROB_TYPES, shape_loss_inputs, to_chunk_level
from vlacrl.algorithms.ppo import compute_gae_advantages, ppo_actor_critic_loss

REWARD_TYPES = ("step_level", "chunk_level")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


@dataclass(frozen=True)
class AlgorithmConfig:
    """The ``algorithm.*`` keys (docs/configuration.md) these functions use, with the reference defaults."""

    adv_type: str = "embodied_grpo"
    loss_type: str = "embodied_grpo"
    reward_type: str = "step_level"
    logprob_type: str = "token_level"
    entropy_type: str = "token_level"
    group_size: int = 8
    rollout_epoch: int = 16
    normalize_advantages: bool = True
    filter_rewards: bool = True
    rewards_lower_bound: float = 0.5
    rewards_upper_bound: float = 4.5
    clip_ratio_low: float = 0.2
    clip_ratio_high: float = 0.28
    entropy_bonus: float = 0.0
    value_clip: float = 0.2
    huber_delta: float = 10.0
    gamma: float = 0.99
    gae_lambda: float = 0.95

    def __post_init__(self) -> None:
        get_advantage_fn(self.adv_type)
        get_loss_fn(self.loss_type)
        checks = [
            (self.reward_type in REWARD_TYPES, f"algorithm.reward_type must be one of {REWARD_TYPES}"),
            (self.logprob_type in LOGPROB_TYPES, f"algorithm.logprob_type must be one of {LOGPROB_TYPES}"),
            (self.entropy_type in LOGPROB_TYPES, f"algorithm.entropy_type must be one of {LOGPROB_TYPES}"),
            (self.group_size >= 1 and self.rollout_epoch >= 1, "algorithm.group_size and rollout_epoch must be >= 1"),
            (self.rewards_lower_bound <= self.rewards_upper_bound, "algorithm.rewards_lower_bound > upper_bound"),
            (0 <= self.clip_ratio_low < 1 and self.clip_ratio_high >= 0, "algorithm.clip_ratio_low/high out of range"),
            (self.entropy_bonus >= 0 and self.value_clip >= 0 and self.huber_delta > 0, "negative bonus/clip/delta"),
            (0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1, "algorithm.gamma and gae_lambda must be in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> AlgorithmConfig:
        """Build from an ``algorithm`` mapping (dict or OmegaConf); keys this package does not use are ignored."""
        return cls(**{f.name: cfg[f.name] for f in fields(cls) if f.name in cfg and cfg[f.name] is not None})


AdvantageFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]
ADVANTAGE_REGISTRY: dict[str, AdvantageFn] = {}
LOSS_REGISTRY: dict[str, LossFn] = {}


def _lookup(registry: Mapping[str, Callable], kind: str, name: str) -> Callable:
    if name not in registry:
        raise UnknownNameError(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(registry))}")
    return registry[name]


def get_advantage_fn(name: str) -> AdvantageFn:
    """The advantage function registered as ``name`` (``algorithm.adv_type``); ``UnknownNameError`` otherwise."""
    return _lookup(ADVANTAGE_REGISTRY, "algorithm.adv_type", name)


def get_loss_fn(name: str) -> LossFn:
    """The loss function registered as ``name`` (``algorithm.loss_type``); ``UnknownNameError`` otherwise."""
    return _lookup(LOSS_REGISTRY, "algorithm.loss_type", name)


def register_advantage(name: str) -> Callable[[AdvantageFn], AdvantageFn]:
    """Decorator: register an advantage function ``fn(cfg, *, rewards, dones, loss_mask, values)``."""

    def decorator(fn: AdvantageFn) -> AdvantageFn:
        ADVANTAGE_REGISTRY[name] = fn
        return fn

    return decorator


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Decorator: register a loss function ``fn(cfg, *, max_episode_steps, **micro_batch)``."""

    def decorator(fn: LossFn) -> LossFn:
        LOSS_REGISTRY[name] = fn
        return fn

    return decorator


@register_advantage("embodied_grpo")
def _grpo_advantages(cfg: AlgorithmConfig, *, rewards, dones, loss_mask=None, values=None):
    del values  # GRPO has no critic
    return compute_grpo_advantages(
        rewards, dones, loss_mask, group_size=cfg.group_size, normalize_advantages=cfg.normalize_advantages
    )


@register_advantage("embodied_gae")
def _gae_advantages(cfg: AlgorithmConfig, *, rewards, dones, loss_mask=None, values=None):
    del loss_mask  # the reference's GAE path ignores the loss mask
    if values is None:
        raise ValueError("adv_type embodied_gae needs rollout values (algorithm.require_values: True)")
    return compute_gae_advantages(
        rewards,
        values,
        dones,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        normalize_advantages=cfg.normalize_advantages,
    )


@register_loss("embodied_grpo")
def _grpo_loss(cfg: AlgorithmConfig, *, max_episode_steps, **mb):
    return grpo_policy_loss(
        mb["logprobs"],
        mb["old_logprobs"],
        mb["advantages"],
        clip_ratio_low=cfg.clip_ratio_low,
        clip_ratio_high=cfg.clip_ratio_high,
        loss_mask=mb.get("loss_mask"),
        loss_mask_sum=mb.get("loss_mask_sum"),
        max_episode_steps=max_episode_steps,
        entropy=mb.get("entropy"),
        entropy_bonus=cfg.entropy_bonus,
    )


@register_loss("embodied_ppo")
def _ppo_loss(cfg: AlgorithmConfig, *, max_episode_steps, **mb):
    del max_episode_steps  # PPO has no per-trajectory weighting
    if mb.get("values") is None:
        raise ValueError("loss_type embodied_ppo needs the value head's values in the model output")
    return ppo_actor_critic_loss(
        mb["logprobs"],
        mb["old_logprobs"],
        mb["advantages"],
        values=mb["values"],
        prev_values=mb["prev_values"],
        returns=mb["returns"],
        clip_ratio_low=cfg.clip_ratio_low,
        clip_ratio_high=cfg.clip_ratio_high,
        value_clip=cfg.value_clip,
        huber_delta=cfg.huber_delta,
        entropy=mb.get("entropy"),
        entropy_bonus=cfg.entropy_bonus,
    )


def compute_advantages_and_returns(
    cfg: AlgorithmConfig,
    *,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    loss_mask: torch.Tensor | None = None,
    values: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Actor-layout advantages and returns ``[N, M, C']`` for ``cfg.adv_type``.

    ``rewards [N, M, C]``, ``dones [N+1, M, C]``, ``loss_mask [N, M, C]``, ``values [N+1, M, C']``. With
    ``reward_type: chunk_level`` rewards are summed and dones reduced to the chunk's last sub-step first
    (``C' = 1``).
    """
    if cfg.reward_type == "chunk_level":
        rewards, dones = to_chunk_level(rewards, dones)
    fn = get_advantage_fn(cfg.adv_type)
    return fn(cfg, rewards=rewards, dones=dones, loss_mask=loss_mask, values=values)


def compute_actor_loss(
    cfg: AlgorithmConfig, *, action_dim: int, max_episode_steps: int, **micro_batch: torch.Tensor | None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch for ``cfg.loss_type`` and its metrics.

    ``micro_batch`` keys (per-sample layout, mb samples): ``logprobs``, ``old_logprobs``, ``entropy``
    ``[mb, C·D]``; ``advantages``, ``returns``, ``loss_mask``, ``loss_mask_sum`` ``[mb, C]``; ``values``,
    ``prev_values`` ``[mb, 1]`` (PPO). They are reshaped by ``cfg.logprob_type`` / ``entropy_type``.
    """
    shaped = shape_loss_inputs(
        micro_batch, action_dim=action_dim, logprob_type=cfg.logprob_type, entropy_type=cfg.entropy_type
    )
    return get_loss_fn(cfg.loss_type)(cfg, max_episode_steps=max_episode_steps, **shaped)
