"""PPO: GAE over the flattened step axis and the clipped actor-critic loss (docs/algorithms.md), hand-computed."""

from __future__ import annotations

import math

import pytest
import torch

from vlacrl.algorithms.ppo import compute_gae_advantages, huber_loss, ppo_actor_critic_loss

# 3 env steps, one column, C = 1. γ = 0.9, λ = 0.8 (γλ = 0.72).
# rewards r = (1, 2, 3); values V = (0.5, 1.0, 1.5, 2.0) (incl. the final observation);
# dones: reset F, after step 0 F, after step 1 T (episode ends), after step 2 F.
# s = 2: δ = 3 + 0.9·2.0·1 − 1.5 = 3.3;        gae = 3.3;                 return = 3.3 + 1.5 = 4.8
# s = 1: δ = 2 + 0.9·1.5·0 − 1.0 = 1.0;        gae = 1.0 + 0.72·0·3.3 = 1.0; return = 2.0
# s = 0: δ = 1 + 0.9·1.0·1 − 0.5 = 1.4;        gae = 1.4 + 0.72·1·1.0 = 2.12; return = 2.62
# A = return − V = (2.12, 1.0, 3.3)
GAMMA, LAM = 0.9, 0.8
RETURNS = [2.62, 2.0, 4.8]
ADVANTAGES = [2.12, 1.0, 3.3]


def _three_step(c_layout: bool):
    if not c_layout:  # N = 3, M = 1, C = 1
        rewards = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
        values = torch.tensor([0.5, 1.0, 1.5, 2.0]).view(4, 1, 1)
        dones = torch.tensor([False, False, True, False]).view(4, 1, 1)
        return rewards, values, dones
    # the same 3 steps as N = 1 chunk of C = 3: the flattened values keep their first N·C + 1 = 4 rows
    # (entry 0's three sub-steps + entry 1's first), the flattened dones their last 4 rows.
    rewards = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3)
    values = torch.tensor([[0.5, 1.0, 1.5], [2.0, 99.0, 99.0]]).view(2, 1, 3)
    dones = torch.tensor([[False, False, False], [False, True, False]]).view(2, 1, 3)
    return rewards, values, dones


@pytest.mark.parametrize("c_layout", [False, True])
def test_gae_golden_values_with_a_done(c_layout):
    rewards, values, dones = _three_step(c_layout)
    adv, ret = compute_gae_advantages(rewards, values, dones, gamma=GAMMA, gae_lambda=LAM, normalize_advantages=False)
    assert adv.shape == ret.shape == rewards.shape
    assert adv.flatten().tolist() == pytest.approx(ADVANTAGES, rel=1e-6)
    assert ret.flatten().tolist() == pytest.approx(RETURNS, rel=1e-6)


def test_gae_normalisation_uses_global_mean_and_population_std():
    rewards, values, dones = _three_step(False)
    adv, ret = compute_gae_advantages(rewards, values, dones, gamma=GAMMA, gae_lambda=LAM)
    # mean = 6.42/3 = 2.14; deviations (−0.02, −1.14, 1.16); population var = (0.0004 + 1.2996 + 1.3456)/3
    std = math.sqrt((0.0004 + 1.2996 + 1.3456) / 3)
    expected = [(a - 2.14) / (std + 1e-5) for a in ADVANTAGES]
    assert adv.flatten().tolist() == pytest.approx(expected, abs=1e-6)  # float32 cancellation near 0
    assert ret.flatten().tolist() == pytest.approx(RETURNS, rel=1e-6)  # returns are not normalised by default


def test_gae_columns_are_independent():
    r1, v1, d1 = _three_step(False)
    rewards = torch.cat([r1, torch.zeros_like(r1)], dim=1)
    values = torch.cat([v1, torch.zeros_like(v1)], dim=1)
    dones = torch.cat([d1, torch.zeros_like(d1)], dim=1)
    adv, _ = compute_gae_advantages(rewards, values, dones, gamma=GAMMA, gae_lambda=LAM, normalize_advantages=False)
    assert adv[:, 0, 0].tolist() == pytest.approx(ADVANTAGES, rel=1e-6)
    assert adv[:, 1, 0].tolist() == [0.0, 0.0, 0.0]


def test_gae_rejects_mismatched_values():
    rewards, values, dones = _three_step(False)
    with pytest.raises(ValueError, match=r"\[N\+1, M, C\]"):
        compute_gae_advantages(rewards, values[:-1], dones)


def test_huber_loss():
    # |e| < δ: 0.5·e²; else δ·(|e| − δ/2). δ = 10: e = 2 → 2; e = −20 → 10·15 = 150; e = 10 → 10·5 = 50.
    out = huber_loss(torch.tensor([2.0, -20.0, 10.0]), 10.0)
    assert out.tolist() == pytest.approx([2.0, 150.0, 50.0])


def test_ppo_loss_golden_values():
    # policy: ratios (1.5, 0.5), A (1, −1): min(1.5, 1.28)·1 = 1.28; min(−0.5, −0.8) = −0.8 →
    #   policy_loss = −(1.28 − 0.8)/2 = −0.24 (upper clip binds for A > 0, lower clip for A < 0)
    # value (value_clip 0.2, Huber δ 10):
    #   sample 0: V = 1.0, V_old = 0.5 → V_clip = 0.5 + 0.2 = 0.7; R = 3: Huber(2) = 2, Huber(2.3) = 2.645 → 2.645
    #   sample 1: V = 0.0, V_old = 0.1 → V_clip = 0.0 (within the clip); R = −20: Huber(−20) = 150 → 150
    #   value_loss = (2.645 + 150)/2 = 76.3225
    # entropy (1, 3) → mean 2, bonus 0.01 → loss = −0.24 + 76.3225 − 0.02 = 76.0625
    loss, metrics = ppo_actor_critic_loss(
        torch.tensor([1.5, 0.5]).log(),
        torch.zeros(2),
        torch.tensor([1.0, -1.0]),
        values=torch.tensor([[1.0], [0.0]]),
        prev_values=torch.tensor([[0.5], [0.1]]),
        returns=torch.tensor([[3.0], [-20.0]]),
        entropy=torch.tensor([1.0, 3.0]),
        entropy_bonus=0.01,
    )
    assert loss.item() == pytest.approx(76.0625, rel=1e-6)
    assert metrics["actor/policy_loss"] == pytest.approx(-0.24, rel=1e-6)
    assert metrics["critic/value_loss"] == pytest.approx(76.3225, rel=1e-6)
    assert metrics["actor/entropy_loss"] == pytest.approx(2.0)
    assert metrics["actor/ratio"] == pytest.approx(1.0)
    assert metrics["actor/raw_loss"] == pytest.approx(76.0625, rel=1e-6)
    # |V − V_old| = 0.5 > 0.2 for sample 0 only → 1/2
    assert metrics["critic/value_clip_ratio"] == pytest.approx(0.5)


def test_ppo_loss_token_level_broadcasting():
    # token level: logprobs [mb, C, D], advantages [mb, C, 1], chunk value [mb, 1], returns [mb, C].
    loss, _ = ppo_actor_critic_loss(
        torch.zeros(4, 2, 3),
        torch.zeros(4, 2, 3),
        torch.ones(4, 2, 1),
        values=torch.zeros(4, 1),
        prev_values=torch.zeros(4, 1),
        returns=torch.full((4, 2), 2.0),
    )
    # ratio 1: policy = −1; value: Huber(2) = 2 → loss = 1
    assert loss.item() == pytest.approx(1.0)
