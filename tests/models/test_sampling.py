"""Masked, tempered action distributions: sampling, greedy decoding, log-probs and entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vlacrl.models.openvla_oft import sampling


def _reference_logprob_table(raw, temperature):
    logits = raw.clone().float()
    logits[..., :31744] = float("-inf")
    logits[..., 32000:] = float("-inf")
    return torch.log_softmax(logits / temperature, dim=-1)


def test_two_token_distribution_by_hand():
    # support = ids {2, 3} of a 5-id vocabulary (id 4 is padding, ids 0-1 are text)
    raw = torch.tensor([[[9.0, 9.0, 0.0, math.log(3.0), 9.0]]])
    lp, ent = sampling.token_logprobs_and_entropy(raw, torch.tensor([[3]]), 2, 4, temperature=1.0)
    assert lp.item() == pytest_approx(math.log(0.75))
    assert ent.item() == pytest_approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    # temperature 2: logits (0, ln3 / 2) → p = (1, √3) / (1 + √3)
    lp2, ent2 = sampling.token_logprobs_and_entropy(raw, torch.tensor([[2]]), 2, 4, temperature=2.0)
    p = torch.tensor([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    assert lp2.item() == pytest_approx(math.log(p[0].item()))
    assert ent2.item() == pytest_approx(-(p * p.log()).sum().item())


def pytest_approx(value):
    return pytest.approx(value, rel=1e-6, abs=1e-7)


def test_sampled_logprobs_equal_log_softmax_of_masked_tempered_logits(policy, batch):
    generator = torch.Generator().manual_seed(0)
    prediction = policy.predict_action_batch(**batch, temperature=1.6, generator=generator)
    tokens = prediction.action_tokens.reshape(2, 56)
    assert ((tokens >= 31744) & (tokens < 32000)).all()
    with torch.no_grad():
        raw = policy(**batch).logits
    table = _reference_logprob_table(raw, 1.6)
    expected = table.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(prediction.logprobs, expected, rtol=1e-5, atol=1e-5)
    assert prediction.processed_logits.shape == (2, 56, 256)
    torch.testing.assert_close(prediction.processed_logits, raw[..., 31744:32000] / 1.6, rtol=0, atol=0)


def test_training_logprobs_and_entropy_match_the_rollout(policy, batch):
    generator = torch.Generator().manual_seed(1)
    prediction = policy.predict_action_batch(**batch, temperature=1.6, generator=generator)
    with torch.no_grad():
        out = policy.action_logprobs(**batch, action_tokens=prediction.action_tokens, temperature=1.6)
    torch.testing.assert_close(out["logprobs"], prediction.logprobs, rtol=1e-5, atol=1e-5)
    table = _reference_logprob_table(out["raw_logits"], 1.6)
    probs = table.exp()
    entropy = -(probs * torch.log(probs + 1e-10)).sum(-1)
    torch.testing.assert_close(out["entropy"], entropy, rtol=1e-5, atol=1e-5)
    ce = -F.cross_entropy((table).transpose(1, 2), prediction.action_tokens.reshape(2, 56), reduction="none")
    torch.testing.assert_close(out["logprobs"], ce, rtol=1e-5, atol=1e-5)
    assert out["raw_logits"].shape == (2, 56, 32064) and out["processed_logits"].shape == (2, 56, 256)
    torch.testing.assert_close(out["processed_logits"], out["raw_logits"][..., 31744:32000], rtol=0, atol=0)
    assert out["values"].shape == (2, 8)


def test_greedy_decoding_is_deterministic_and_is_the_argmax(policy, batch):
    first = policy.predict_action_batch(**batch, greedy=True)
    second = policy.predict_action_batch(**batch, greedy=True)
    assert torch.equal(first.action_tokens, second.action_tokens)
    assert torch.equal(first.actions, second.actions)
    with torch.no_grad():
        raw = policy(**batch).logits
    expected = raw[..., 31744:32000].argmax(-1) + 31744
    assert torch.equal(first.action_tokens.reshape(2, 56), expected)


def test_seeded_sampling_is_reproducible_and_top_1_is_greedy(policy, batch):
    draws = [policy.predict_action_batch(**batch, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(draws[0].action_tokens, draws[1].action_tokens)
    top1 = policy.predict_action_batch(**batch, top_k=1, generator=torch.Generator().manual_seed(3))
    greedy = policy.predict_action_batch(**batch, greedy=True)
    assert torch.equal(top1.action_tokens, greedy.action_tokens)
    assert torch.allclose(top1.logprobs, torch.zeros_like(top1.logprobs))


def test_top_k_keeps_exactly_k_ids():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = sampling.apply_top_k(logits, 2)
    assert torch.isfinite(kept).tolist() == [[False, True, False, True, False]]
    assert torch.equal(sampling.apply_top_k(logits, -1), logits)


def test_sampling_frequencies_follow_the_tempered_distribution():
    raw = torch.tensor([[[0.0, 0.0, 0.0, math.log(3.0), 0.0]]]).repeat(1, 4000, 1)
    drawn = sampling.sample_tokens(raw, 2, 4, temperature=1.0, generator=torch.Generator().manual_seed(0))
    share = (drawn.tokens == 3).float().mean().item()
    assert abs(share - 0.75) < 0.03  # 4000 draws: std ≈ 0.007
    assert set(drawn.tokens.unique().tolist()) <= {2, 3}
