"""Registries, the algorithm config and the dispatching entry points."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from vlacrl.algorithms.grpo import compute_grpo_advantages, grpo_policy_loss
from vlacrl.algorithms.masks import compute_loss_mask
from vlacrl.algorithms.ppo import compute_gae_advantages
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


def test_registries_hold_the_reference_names():
    assert set(ADVANTAGE_REGISTRY) == {"embodied_grpo", "embodied_gae"}
    assert set(LOSS_REGISTRY) == {"embodied_grpo", "embodied_ppo"}


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(KeyError) as info:
        get_advantage_fn("math_grpo")
    assert str(info.value) == "unknown algorithm.adv_type 'math_grpo'; valid names: embodied_gae, embodied_grpo"
    with pytest.raises(UnknownNameError, match="valid names: embodied_grpo, embodied_ppo"):
        get_loss_fn("ppo")
    with pytest.raises(UnknownNameError, match="algorithm.loss_type"):
        AlgorithmConfig(loss_type="nope")


def test_config_defaults_match_the_reference():
    cfg = AlgorithmConfig()
    assert (cfg.group_size, cfg.clip_ratio_low, cfg.clip_ratio_high, cfg.entropy_bonus) == (8, 0.2, 0.28, 0.0)
    assert (cfg.rewards_lower_bound, cfg.rewards_upper_bound, cfg.filter_rewards) == (0.5, 4.5, True)
    assert (cfg.gamma, cfg.gae_lambda, cfg.value_clip, cfg.huber_delta) == (0.99, 0.95, 0.2, 10.0)


def test_config_from_an_omegaconf_algorithm_group_ignores_unused_keys():
    group = OmegaConf.create({"group_size": 4, "kl_beta": 0.0, "clip_ratio_c": 3.0, "adv_type": "embodied_gae"})
    cfg = AlgorithmConfig.from_mapping(group)
    assert cfg.group_size == 4 and cfg.adv_type == "embodied_gae" and cfg.loss_type == "embodied_grpo"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rewards_lower_bound": 5.0}, "lower_bound"),
        ({"reward_type": "episode_level"}, "reward_type"),
        ({"clip_ratio_low": 1.0}, "clip_ratio"),
        ({"gamma": 1.5}, "gamma"),
        ({"group_size": 0}, "group_size"),
    ],
)
def test_config_validation(override, message):
    with pytest.raises(ValueError, match=message):
        AlgorithmConfig(**override)


def test_dispatch_grpo_advantages_equals_the_direct_call(scenario):
    loss_mask, _ = compute_loss_mask(scenario["dones"])
    cfg = AlgorithmConfig(group_size=2)
    adv, ret = compute_advantages_and_returns(
        cfg, rewards=scenario["rewards"], dones=scenario["dones"], loss_mask=loss_mask
    )
    direct, _ = compute_grpo_advantages(scenario["rewards"], scenario["dones"], loss_mask, group_size=2)
    assert torch.equal(adv, direct) and torch.equal(ret, direct)


def test_dispatch_gae_with_chunk_level_rewards(scenario):
    cfg = AlgorithmConfig(adv_type="embodied_gae", loss_type="embodied_ppo", reward_type="chunk_level")
    values = torch.linspace(0, 1, 3 * 6).view(3, 6, 1)
    adv, ret = compute_advantages_and_returns(cfg, rewards=scenario["rewards"], dones=scenario["dones"], values=values)
    # chunk level: rewards summed over the chunk, dones of the chunk's last sub-step
    direct = compute_gae_advantages(
        scenario["rewards"].sum(-1, keepdim=True), values, scenario["dones"][..., -1:], gamma=0.99, gae_lambda=0.95
    )
    assert adv.shape == (2, 6, 1) and torch.equal(adv, direct[0]) and torch.equal(ret, direct[1])
    with pytest.raises(ValueError, match="require_values"):
        compute_advantages_and_returns(cfg, rewards=scenario["rewards"], dones=scenario["dones"])


def test_dispatch_grpo_loss_reshapes_token_level_inputs():
    gen = torch.Generator().manual_seed(0)
    mb, c, d = 4, 2, 3
    micro = {
        "logprobs": -torch.rand(mb, c * d, generator=gen),
        "old_logprobs": -torch.rand(mb, c * d, generator=gen),
        "entropy": torch.rand(mb, c * d, generator=gen),
        "advantages": torch.randn(mb, c, generator=gen),
        "loss_mask": torch.tensor([[True, True], [True, False], [False, False], [True, True]]),
        "loss_mask_sum": torch.tensor([[10, 10], [3, 3], [3, 3], [7, 7]]),
        "returns": torch.zeros(mb, c),
        "prev_values": torch.zeros(mb, 1),
    }
    cfg = AlgorithmConfig(entropy_bonus=0.01)
    loss, metrics = compute_actor_loss(cfg, action_dim=d, max_episode_steps=16, **micro)
    direct, direct_metrics = grpo_policy_loss(
        micro["logprobs"].view(mb, c, d),
        micro["old_logprobs"].view(mb, c, d),
        micro["advantages"].unsqueeze(-1),
        loss_mask=micro["loss_mask"].unsqueeze(-1),
        loss_mask_sum=micro["loss_mask_sum"].unsqueeze(-1),
        max_episode_steps=16,
        entropy=micro["entropy"].view(mb, c, d),
        entropy_bonus=0.01,
    )
    assert loss.item() == pytest.approx(direct.item()) and metrics == pytest.approx(direct_metrics)


def test_dispatch_ppo_loss_needs_values():
    cfg = AlgorithmConfig(adv_type="embodied_gae", loss_type="embodied_ppo")
    micro = {"logprobs": torch.zeros(2, 4), "old_logprobs": torch.zeros(2, 4), "advantages": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match="value head"):
        compute_actor_loss(cfg, action_dim=2, max_episode_steps=8, **micro)
    micro.update(values=torch.zeros(2, 1), prev_values=torch.zeros(2, 1), returns=torch.ones(2, 2))
    loss, metrics = compute_actor_loss(cfg, action_dim=2, max_episode_steps=8, **micro)
    assert loss.item() == pytest.approx(0.5)  # ratio 1, A = 0 → policy 0; Huber(1) = 0.5
    assert set(metrics) >= {"critic/value_loss", "critic/value_clip_ratio", "actor/policy_loss"}
