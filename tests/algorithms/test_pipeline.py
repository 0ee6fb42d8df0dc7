"""One actor-side GRPO step of pure algorithm code: rollout batch → masks → advantages → shuffled micro-batches
→ loss and gradients. Also the local metric helpers."""

from __future__ import annotations

import pytest
import torch

from vlacrl.algorithms import (
    AlgorithmConfig,
    apply_group_filter,
    compute_actor_loss,
    compute_advantages_and_returns,
    compute_loss_mask,
    flatten_and_shuffle,
    iter_microbatches,
    iter_minibatches,
    make_update_schedule,
    mean_metrics,
    prepare_batch,
    rollout_batch_to_actor_layout,
    rollout_metrics,
)

E, N, B, C, D, G = 2, 3, 4, 2, 3, 2


def _rollout_batch(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """What a rollout worker sends: [E·N, b, …] per-step keys, [E·(N+1), b, …] dones / values.

    Even envs succeed at a random env step (reward +5, done from then on); odd envs fail (random spurious
    rewards after a random early done, which the mask must cut). Groups (0, 1), (2, 3) are therefore mixed.
    """
    dones = torch.zeros(E, N + 1, B, C, dtype=torch.bool)
    rewards = torch.zeros(E, N, B, C)
    for e in range(E):
        for j in range(B):
            step = int(torch.randint(0, N * C, (1,), generator=gen))
            for s in range(step, N * C):
                dones[e, 1 + s // C, j, s % C] = True
            if j % 2 == 0:
                rewards[e, step // C, j, step % C] = 5.0
            elif step + 1 < N * C:
                rewards[e, (step + 1) // C, j, (step + 1) % C] = 5.0  # after the done: masked out
    return {
        "rewards": rewards.view(E * N, B, C),
        "dones": dones.view(E * (N + 1), B, C),
        "prev_logprobs": -torch.rand(E * N, B, C * D, generator=gen),
        "prev_values": torch.zeros(E * (N + 1), B, 1),
        "env_info/success_once": torch.zeros(E * B),
    }


def test_one_grpo_update_pass():
    gen = torch.Generator().manual_seed(3)
    cfg = AlgorithmConfig(group_size=G, rollout_epoch=E)
    raw = _rollout_batch(gen)
    batch, metrics = prepare_batch(dict(raw), cfg)  # what the actor calls once per global step
    assert batch["rewards"].shape == (N, E * B, C) and batch["dones"].shape == (N + 1, E * B, C)

    # the same, step by step: layout, "ignore after done", the group filter, advantages
    layout = rollout_batch_to_actor_layout(raw, cfg.rollout_epoch)
    valid, loss_mask_sum = compute_loss_mask(layout["dones"])
    loss_mask, _ = apply_group_filter(layout["rewards"], valid, G, cfg.rewards_lower_bound, cfg.rewards_upper_bound)
    adv, ret = compute_advantages_and_returns(
        cfg, rewards=layout["rewards"], dones=layout["dones"], loss_mask=loss_mask
    )
    for key, expected in (("valid_mask", valid), ("loss_mask", loss_mask), ("loss_mask_sum", loss_mask_sum),
                          ("advantages", adv), ("returns", ret)):  # fmt: skip
        assert torch.equal(batch[key], expected), key
    assert torch.count_nonzero(batch["advantages"][~batch["loss_mask"]]) == 0
    assert bool(loss_mask.any()) and not bool(loss_mask.all())  # some steps train, some are masked
    names = {"rewards", *(f"{k}_{s}" for k in ("advantages", "returns") for s in ("mean", "max", "min"))}
    assert metrics == {f"rollout/{k}": v for k, v in rollout_metrics(layout["rewards"], adv, ret).items()}
    assert set(metrics) == {f"rollout/{n}" for n in names}

    flat = flatten_and_shuffle(batch, generator=torch.Generator().manual_seed(0))
    schedule = make_update_schedule(N * E * B, global_batch_size=8, micro_batch_size=2, actor_world_size=1)
    assert (schedule.num_minibatches, schedule.num_microbatches) == (3, 4)
    # stands in for the policy's change of log-probs, one row per (shuffled) sample position
    delta = torch.zeros(N * E * B, C * D, requires_grad=True)
    flat["index"] = torch.arange(N * E * B)
    per_micro = []
    for mini in iter_minibatches(flat, schedule):
        for micro in iter_microbatches(mini, schedule):
            logprobs = micro["prev_logprobs"] + delta[micro["index"]]
            loss, m = compute_actor_loss(
                cfg,
                action_dim=D,
                max_episode_steps=N * C,
                logprobs=logprobs,
                old_logprobs=micro["prev_logprobs"],
                advantages=micro["advantages"],
                loss_mask=micro["loss_mask"],
                loss_mask_sum=micro["loss_mask_sum"],
            )
            (loss / schedule.num_microbatches).backward()
            per_micro.append(m)
    assert len(per_micro) == 12
    averaged = mean_metrics(per_micro)
    assert set(averaged) == {
        "actor/raw_loss",
        "actor/policy_loss",
        "actor/policy_clipfrac",
        "actor/ppo_kl",
        "actor/entropy_loss",
    }
    # at ratio 1 the gradient of a sample's tokens is −A·(T_max/len)/(mb·C·D)/accumulation, zero where masked
    grad = delta.grad.view(-1, C, D)
    assert torch.count_nonzero(grad[~flat["loss_mask"]]) == 0
    weight = (N * C) / flat["loss_mask_sum"].float() / (2 * C * D) / schedule.num_microbatches
    expected = -flat["advantages"] * weight * flat["loss_mask"]
    assert torch.allclose(grad, expected.unsqueeze(-1).expand_as(grad), atol=1e-7)
    assert torch.count_nonzero(grad) > 0


def test_mean_metrics_averages_per_key():
    out = mean_metrics([{"a": 1.0, "b": 2.0}, {"a": 3.0}])
    assert out == {"a": 2.0, "b": 2.0}


def test_rollout_metrics_values():
    rewards = torch.tensor([[0.0, 5.0], [0.0, 0.0]])
    adv = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    out = rollout_metrics(rewards, adv, adv)
    assert out["rewards"] == 1.25  # mean over every entry, masked ones included
    assert (out["advantages_mean"], out["advantages_max"], out["advantages_min"]) == (0.125, 1.0, -1.0)
    assert out["returns_mean"] == pytest.approx(0.125)
