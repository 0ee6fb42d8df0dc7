"""ER cross-entropy and DER MSE (docs/methods/er.md) against hand-computed values and the reference's formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vlacrl.algorithms.replay_losses import action_token_cross_entropy, der_loss, er_loss
from vlacrl.models.openvla_oft.sampling import mask_to_action_ids


def test_er_cross_entropy_hand_computed():
    """Vocab of 8 ids, action ids [2, 6) (token_begin 2, vocab_size 6), ids 0, 1, 6, 7 masked out.

    Row 0: action logits [0, 0, 0, 0] → CE = ln 4 for any target.
    Row 1: action logits [ln 5, 0, 0, 0], target id 2 → p = 5 / 8 → CE = ln(8 / 5).
    Mean over the 2 tokens = ln(6.4) / 2; ER term = 0.03 × that.
    """
    big = 100.0  # huge logits on the masked ids must not matter
    logits = torch.tensor(
        [[[big, big, 0.0, 0.0, 0.0, 0.0, big, big], [big, big, math.log(5), 0.0, 0.0, 0.0, big, big]]]
    )
    tokens = torch.tensor([[4, 2]])
    expected = math.log(6.4) / 2
    loss, accuracy = action_token_cross_entropy(logits, tokens, token_begin=2, vocab_size=6)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert accuracy.item() == pytest.approx(0.5)  # row 0 argmax = id 2 ≠ 4; row 1 argmax = id 2 = target
    weighted, metrics = er_loss(logits, tokens, 0.03, token_begin=2, vocab_size=6)
    assert weighted.item() == pytest.approx(0.03 * expected, rel=1e-6)
    assert metrics["bc/unweighted_loss"] == pytest.approx(expected, rel=1e-6)
    assert metrics["bc/coeff"] == 0.03


def test_er_matches_reference_masking_on_the_real_vocabulary():
    """Equal to F.cross_entropy on raw logits [B, 56, 32064] with ids < 31744 and ≥ 32000 set to −∞, mean over B·56."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 56, 32064, generator=generator, requires_grad=True)
    tokens = torch.randint(31744, 32000, (3, 56), generator=generator)
    masked = mask_to_action_ids(logits, 31744, 32000)
    assert torch.isinf(masked[..., :31744]).all() and torch.isinf(masked[..., 32000:]).all()
    reference = F.cross_entropy(masked.permute(0, 2, 1), tokens, reduction="mean")
    loss, _ = er_loss(logits, tokens, 1.0)
    torch.testing.assert_close(loss, reference)
    (grad,) = torch.autograd.grad(loss, logits)
    (grad_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(grad, grad_ref)
    assert grad[..., :31744].abs().sum() == 0 and grad[..., 32000:].abs().sum() == 0


def test_er_rejects_non_action_tokens():
    with pytest.raises(ValueError, match="expert tokens"):
        er_loss(torch.zeros(1, 2, 32064), torch.tensor([[31744, 100]]), 0.03)
    with pytest.raises(ValueError, match="do not match"):
        er_loss(torch.zeros(1, 2, 32064), torch.tensor([[31744]]), 0.03)


def test_der_mse_hand_computed():
    """current − reference = [0, 2, 3, 0] → MSE = 13 / 4 = 3.25, mean |·| = 1.25, max |·| = 3; × 0.03."""
    current = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], requires_grad=True)
    reference = torch.tensor([[[1.0, 0.0], [0.0, 4.0]]], requires_grad=True)
    loss, metrics = der_loss(current, reference, 0.03)
    assert loss.item() == pytest.approx(0.03 * 3.25)
    assert metrics == pytest.approx(
        {
            "bc/unweighted_loss": 3.25,
            "bc/logits_mse": 3.25,
            "bc/coeff": 0.03,
            "bc/mean_abs_error": 1.25,
            "bc/max_abs_error": 3.0,
        }
    )
    loss.backward()
    # d/dz_cur of 0.03 · mean(d²) = 0.03 · 2 d / 4; nothing reaches the reference
    torch.testing.assert_close(current.grad, 0.03 * 2 * (current - reference).detach() / 4)
    assert reference.grad is None


def test_der_shape_mismatch():
    with pytest.raises(ValueError, match="differ"):
        der_loss(torch.zeros(1, 56, 256), torch.zeros(1, 56, 255), 0.03)
