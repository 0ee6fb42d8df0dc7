"""GRPO advantages and the token-level policy loss (docs/algorithms.md) against hand-computed golden values."""

from __future__ import annotations

import math

import pytest
import torch

from vlacrl.algorithms.grpo import compute_grpo_advantages, group_normalize, grpo_policy_loss, trajectory_scores
from vlacrl.algorithms.masks import apply_group_filter, compute_loss_mask

INV_SQRT2 = 1 / math.sqrt(2)


def test_scores_sum_rewards_up_to_the_first_done(scenario):
    # col 4: +5 at step 0 then done; the −5 at step 3 comes after the first done and is cut by the backward
    # accumulation (score·(1 − done after step 2) resets it to 0 before r_0 = 5 is added).
    scores = trajectory_scores(scenario["rewards"], scenario["dones"])
    assert scores.tolist() == [5.0, 0.0, 0.0, 0.0, 5.0, 5.0]


def test_group_normalize_uses_the_unbiased_std():
    # group (5, 0, 5): mean 10/3, deviations (5/3, −10/3, 5/3), unbiased var = (25 + 100 + 25)/9 / 2 = 75/9,
    # std = 5·√3/3 → A = (5/3)/(5√3/3) = 1/√3 and −2/√3. group (0, 0, 0): std 0 → A = 0/(0 + 1e-6) = 0.
    adv = group_normalize(torch.tensor([5.0, 0.0, 5.0, 0.0, 0.0, 0.0]), group_size=3)
    s3 = math.sqrt(3)
    assert adv.tolist() == pytest.approx([1 / s3, -2 / s3, 1 / s3, 0, 0, 0], abs=1e-6)


def test_group_normalize_eps():
    # (1, 0): mean 0.5, unbiased std = √(0.25 + 0.25) = √0.5; with eps = 0.5: A = 0.5/(√0.5 + 0.5).
    adv = group_normalize(torch.tensor([1.0, 0.0]), group_size=2, epsilon=0.5)
    expected = 0.5 / (math.sqrt(0.5) + 0.5)
    assert adv.tolist() == pytest.approx([expected, -expected], rel=1e-6)


def test_group_normalize_rejects_groups_of_one():
    with pytest.raises(ValueError, match="G >= 2"):
        group_normalize(torch.zeros(4), group_size=1)


def test_advantages_on_the_filtered_scenario(scenario):
    loss_mask, _ = compute_loss_mask(scenario["dones"])
    filtered, _ = apply_group_filter(scenario["rewards"], loss_mask, group_size=2)
    adv, returns = compute_grpo_advantages(scenario["rewards"], scenario["dones"], filtered, group_size=2)
    assert adv.shape == (2, 6, 3) and returns is adv
    # group (0, 1): scores (5, 0) → mean 2.5, unbiased std = √(2.5² + 2.5²) = 2.5·√2 → A = ±1/√2.
    flat0 = [adv[n, 0, k].item() for n in range(2) for k in range(3)]
    flat1 = [adv[n, 1, k].item() for n in range(2) for k in range(3)]
    assert flat0 == pytest.approx([INV_SQRT2] * 3 + [0.0] * 3, abs=1e-6)  # success at step 2: 3 valid steps
    assert flat1 == pytest.approx([-INV_SQRT2] * 6, abs=1e-6)  # never succeeds: every step valid
    # (2, 3) equal rewards (all 0) and (4, 5) equal rewards (all 5): zero advantage, and filtered anyway.
    assert torch.count_nonzero(adv[:, 2:]) == 0


def test_equal_reward_group_has_zero_advantage_even_unfiltered(scenario):
    loss_mask, _ = compute_loss_mask(scenario["dones"])
    adv, _ = compute_grpo_advantages(scenario["rewards"], scenario["dones"], loss_mask, group_size=2)
    # (5 − 5)/(0 + 1e-6) = 0 for the all-success group; (0 − 0)/(0 + 1e-6) = 0 for the all-fail group.
    assert torch.count_nonzero(adv[:, 2:]) == 0


def test_unnormalised_advantages_are_the_raw_scores(scenario):
    adv, _ = compute_grpo_advantages(
        scenario["rewards"], scenario["dones"], None, group_size=2, normalize_advantages=False
    )
    assert adv[0, :, 0].tolist() == [5.0, 0.0, 0.0, 0.0, 5.0, 5.0]
    assert torch.equal(adv, adv[:1, :, :1].expand_as(adv))  # broadcast to every step without a mask


def test_advantages_are_zero_on_masked_steps_for_random_rollouts():
    gen = torch.Generator().manual_seed(0)
    n, m, c = 5, 16, 4
    dones = torch.rand(n + 1, m, c, generator=gen) < 0.05
    dones[0] = False
    rewards = 5.0 * (torch.rand(n, m, c, generator=gen) < 0.1)
    loss_mask, _ = compute_loss_mask(dones)
    adv, _ = compute_grpo_advantages(rewards, dones, loss_mask, group_size=4)
    assert torch.count_nonzero(adv[~loss_mask]) == 0
    # every valid step of a trajectory carries the same advantage
    for col in range(m):
        valid = adv[:, col][loss_mask[:, col]]
        assert torch.allclose(valid, valid[:1].expand_as(valid))


# ---------------------------------------------------------------- policy loss
# mb = 2 samples, C = 2 sub-steps, D = 2 tokens; old log-probs 0, so ratio = exp(logp) is chosen directly.
# sample 0: A = +1, both sub-steps valid, trajectory of 256 valid steps → w = 256/512 = 0.5
#   ratios [[1.5, 0.5], [1.1, 0.9]];  pg = max(−r, −clip(r, 0.8, 1.28)):
#   1.5 → max(−1.5, −1.28) = −1.28 (upper clip binds);  0.5 → max(−0.5, −0.8) = −0.5 (A > 0: no lower clip)
#   1.1 → −1.1;  0.9 → −0.9;  divided by w = 0.5: −2.56, −1.0, −2.2, −1.8 → sum −7.56
# sample 1: A = −2, sub-step 0 valid, sub-step 1 after the done (masked), 128 valid steps → w = 0.25
#   ratios [[0.5, 1.5], [0.7, 1.0]];  pg = max(2r, 2·clip(r)):
#   0.5 → max(1.0, 1.6) = 1.6 (lower clip binds);  1.5 → max(3.0, 2.56) = 3.0 (A < 0: no upper clip)
#   divided by w = 0.25: 6.4, 12.0; masked entries contribute 0 → sum 18.4
# policy_loss = (−7.56 + 18.4) / 8 entries (masked ones included) = 10.84 / 8 = 1.355
RATIOS = [[[1.5, 0.5], [1.1, 0.9]], [[0.5, 1.5], [0.7, 1.0]]]
POLICY_LOSS = 10.84 / 8


def _loss_inputs():
    logprobs = torch.tensor(RATIOS).log().requires_grad_(True)
    return {
        "logprobs": logprobs,
        "old_logprobs": torch.zeros(2, 2, 2),
        "advantages": torch.tensor([[1.0, 1.0], [-2.0, -2.0]]).unsqueeze(-1),
        "loss_mask": torch.tensor([[True, True], [True, False]]).unsqueeze(-1),
        "loss_mask_sum": torch.tensor([[256, 256], [128, 128]]).unsqueeze(-1),
        "max_episode_steps": 512,
    }


def test_grpo_loss_golden_value_with_clipping_on_both_sides():
    inputs = _loss_inputs()
    loss, metrics = grpo_policy_loss(**inputs)
    assert loss.item() == pytest.approx(POLICY_LOSS, rel=1e-6)
    assert metrics["actor/policy_loss"] == pytest.approx(POLICY_LOSS, rel=1e-6)
    assert metrics["actor/raw_loss"] == pytest.approx(POLICY_LOSS, rel=1e-6)
    assert metrics["actor/entropy_loss"] == 0.0
    # ppo_kl = mean over all 8 entries of −log(ratio)·mask (the two masked tokens count as 0).
    logs = [math.log(r) for r in (1.5, 0.5, 1.1, 0.9, 0.5, 1.5)]
    assert metrics["actor/ppo_kl"] == pytest.approx(-sum(logs) / 8, rel=1e-6)
    # policy_clipfrac as the reference computes it: clipped surrogate −A·clip(r) per token compared with the
    # scalar loss 1.355, times the mask, mean over 8. sample 0: −1.28, −0.8, −1.1, −0.9 (none > 1.355);
    # sample 1 valid: 2·0.8 = 1.6 and 2·1.28 = 2.56 (both > 1.355) → 2/8.
    assert metrics["actor/policy_clipfrac"] == pytest.approx(0.25)


def test_grpo_loss_gradient_is_zero_on_clipped_and_masked_tokens():
    inputs = _loss_inputs()
    loss, _ = grpo_policy_loss(**inputs)
    loss.backward()
    grad = inputs["logprobs"].grad
    # unclipped token: d/dlogp of (−A·r/w)/8 = −A·r/(8w). sample 0 (A = 1, w = 0.5): r = 0.5 → −0.125,
    # r = 1.1 → −0.275, r = 0.9 → −0.225. sample 1 (A = −2, w = 0.25): r = 1.5 → 2·1.5/2 = 1.5.
    expected = torch.tensor([[[0.0, -0.125], [-0.275, -0.225]], [[0.0, 1.5], [0.0, 0.0]]])
    assert torch.allclose(grad, expected, atol=1e-6)


def test_masked_entries_do_not_change_the_loss():
    inputs = _loss_inputs()
    loss, _ = grpo_policy_loss(**inputs)
    inputs["logprobs"] = inputs["logprobs"].detach().clone()
    inputs["logprobs"][1, 1] = 3.0  # masked sub-step: any value
    assert grpo_policy_loss(**inputs)[0].item() == pytest.approx(loss.item(), rel=1e-6)


def test_entropy_bonus_uses_the_masked_mean_over_valid_substeps():
    inputs = _loss_inputs()
    entropy = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    loss, metrics = grpo_policy_loss(**inputs, entropy=entropy, entropy_bonus=0.1)
    # sum(entropy·mask) = 1 + 2 + 3 + 4 + 5 + 6 = 21 over mask.sum() = 3 valid sub-steps → 7 (the D = 2 token
    # entropies of a sub-step are summed); loss = 1.355 − 0.1·7 = 0.655.
    assert metrics["actor/entropy_loss"] == pytest.approx(7.0)
    assert loss.item() == pytest.approx(POLICY_LOSS - 0.7, rel=1e-6)
    # entropy_bonus = 0 (the default): no entropy term at all
    assert grpo_policy_loss(**inputs, entropy=entropy)[1]["actor/entropy_loss"] == 0.0


def test_weighting_makes_each_trajectory_weigh_the_same_regardless_of_length():
    # two trajectories with A = 1 and ratio 1: one with 2 valid steps, one with 8 (T_max = 8, C = 1, D = 1).
    # each valid token contributes −A·r/w = −1/(len/8) = −8/len, so each trajectory sums to −8 whatever its
    # length: short 2 × (−8/2) = −8; long 8 × (−8/8) = −8; mean over all 16 entries = −16/16 = −1.
    mask = torch.tensor([[True]] * 2 + [[False]] * 6 + [[True]] * 8).unsqueeze(-1)  # [16, 1, 1]
    lens = torch.tensor([[2]] * 8 + [[8]] * 8).unsqueeze(-1)
    loss, _ = grpo_policy_loss(
        torch.zeros(16, 1, 1),
        torch.zeros(16, 1, 1),
        torch.ones(16, 1, 1),
        loss_mask=mask,
        loss_mask_sum=lens,
        max_episode_steps=8,
    )
    assert loss.item() == pytest.approx(-1.0)


def test_grpo_loss_without_a_mask_is_a_plain_mean():
    inputs = _loss_inputs()
    loss, metrics = grpo_policy_loss(inputs["logprobs"], inputs["old_logprobs"], inputs["advantages"])
    # pg: sample 0 → −1.28, −0.5, −1.1, −0.9; sample 1 (A = −2) → 1.6, 3.0, max(1.4, 1.6) = 1.6, max(2, 2) = 2
    # mean = (−3.78 + 8.2)/8 = 0.5525
    assert loss.item() == pytest.approx(4.42 / 8, rel=1e-6)
    assert metrics["actor/ppo_kl"] == pytest.approx(-sum(math.log(r) for r in (1.5, 0.5, 1.1, 0.9, 0.5, 1.5, 0.7)) / 8)


def test_grpo_loss_requires_the_weight_inputs_with_a_mask():
    inputs = _loss_inputs()
    del inputs["loss_mask_sum"]
    with pytest.raises(ValueError, match="loss_mask_sum"):
        grpo_policy_loss(**inputs)
