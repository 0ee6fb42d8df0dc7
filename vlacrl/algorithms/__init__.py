"""GRPO and PPO for embodied rollouts: masks, advantages, losses, batch layout — pure torch, no Ray, no model."""

from vlacrl.algorithms.grpo import compute_grpo_advantages, group_normalize, grpo_policy_loss, trajectory_scores
from vlacrl.algorithms.layout import (
    UpdateSchedule,
    concat_env_ranges,
    flatten_and_shuffle,
    iter_microbatches,
    iter_minibatches,
    make_update_schedule,
    rollout_batch_to_actor_layout,
    rollout_to_actor_layout,
    shape_loss_inputs,
    slice_env_range,
)
from vlacrl.algorithms.masks import apply_group_filter, compute_loss_mask
from vlacrl.algorithms.metrics import mean_metrics, rollout_metrics
from vlacrl.algorithms.ppo import compute_gae_advantages, huber_loss, ppo_actor_critic_loss
from vlacrl.algorithms.prepare import prepare_batch
from vlacrl.algorithms.registry import (
    ADVANTAGE_REGISTRY,
    LOSS_REGISTRY,
    AlgorithmConfig,
    UnknownNameError,
    compute_actor_loss,
    compute_advantages_and_returns,
    get_advantage_fn,
    get_loss_fn,
)

__all__ = [
    "ADVANTAGE_REGISTRY",
    "LOSS_REGISTRY",
    "AlgorithmConfig",
    "UnknownNameError",
    "UpdateSchedule",
    "apply_group_filter",
    "compute_actor_loss",
    "compute_advantages_and_returns",
    "compute_gae_advantages",
    "compute_grpo_advantages",
    "compute_loss_mask",
    "concat_env_ranges",
    "flatten_and_shuffle",
    "get_advantage_fn",
    "get_loss_fn",
    "group_normalize",
    "grpo_policy_loss",
    "huber_loss",
    "iter_microbatches",
    "iter_minibatches",
    "make_update_schedule",
    "mean_metrics",
    "ppo_actor_critic_loss",
    "prepare_batch",
    "rollout_batch_to_actor_layout",
    "rollout_to_actor_layout",
    "rollout_metrics",
    "shape_loss_inputs",
    "slice_env_range",
    "trajectory_scores",
]
