"""From what the rollout workers send to what the loss reads: one function the actor calls once per global step."""

from __future__ import annotations

import torch

from vlacrl.algorithms.layout import rollout_batch_to_actor_layout
from vlacrl.algorithms.masks import apply_group_filter, compute_loss_mask
from vlacrl.algorithms.metrics import rollout_metrics
from vlacrl.algorithms.registry import AlgorithmConfig, compute_advantages_and_returns


def prepare_batch(
    batch: dict[str, torch.Tensor], algo: AlgorithmConfig, *, use_values: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Rollout layout → actor layout, the loss mask ("ignore after done"), the GRPO group filter (when
    ``algo.filter_rewards``), advantages and returns (from ``prev_values`` when ``use_values``: PPO).

    Adds ``valid_mask`` (steps before each episode's end, before the filter), ``loss_mask`` ``[N, b, C]`` (bool),
    ``loss_mask_sum`` ``[N, b, 1]``, ``advantages`` and ``returns``; returns the batch and the ``rollout/*``
    metrics (rewards, advantage and return statistics). docs/algorithms.md.
    """
    batch = rollout_batch_to_actor_layout(batch, algo.rollout_epoch)
    loss_mask, loss_mask_sum = compute_loss_mask(batch["dones"])
    batch["valid_mask"] = loss_mask
    if algo.filter_rewards:
        loss_mask, _ = apply_group_filter(
            batch["rewards"], loss_mask, algo.group_size, algo.rewards_lower_bound, algo.rewards_upper_bound
        )
    values = batch.get("prev_values") if use_values else None
    advantages, returns = compute_advantages_and_returns(
        algo, rewards=batch["rewards"], dones=batch["dones"], loss_mask=loss_mask, values=values
    )
    batch.update(loss_mask=loss_mask, loss_mask_sum=loss_mask_sum, advantages=advantages, returns=returns)
    metrics = {f"rollout/{k}": v for k, v in rollout_metrics(batch["rewards"], advantages, returns).items()}
    return batch, metrics
