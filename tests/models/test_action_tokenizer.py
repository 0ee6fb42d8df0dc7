"""Token ids ↔ continuous actions: bins, BOUNDS_Q99 un-normalisation, nearest-bin encoding (hand-computed)."""

from __future__ import annotations

import pytest
import torch

from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer, resolve_unnorm_key

# Three dims: two normalised with q01/q99, the last (a gripper) passed through because mask is False.
STATS = {
    "libero_spatial_no_noops": {
        "action": {"q01": [-1.0, 0.0, -0.5], "q99": [1.0, 2.0, 0.5], "mask": [True, True, False]}
    }
}


@pytest.fixture()
def tok():
    return ActionTokenizer.from_norm_stats(STATS, "libero_spatial")


def test_bins_and_valid_range(tok):
    assert tok.token_begin == 31744 and tok.bin_centers.shape == (255,)
    assert tok.bin_centers[0].item() == pytest.approx(-254 / 255, abs=1e-15)
    assert tok.bin_centers[127].item() == pytest.approx(0.0, abs=1e-15)
    assert tok.bin_centers[254].item() == pytest.approx(254 / 255, abs=1e-15)


def test_decode_normalised_values(tok):
    tokens = torch.tensor([[31744, 31745, 31872, 31999, 31834]])
    expected = torch.tensor([[254 / 255, 254 / 255, 0.0, -254 / 255, 76 / 255]], dtype=torch.float64)
    torch.testing.assert_close(tok.tokens_to_normalized(tokens), expected, rtol=0, atol=1e-15)


def test_bounds_q99_unnormalisation_by_hand(tok):
    tokens = torch.tensor([[31745, 31872, 31999], [31999, 31745, 31745]])
    actions = tok.decode(tokens)
    # dim 0: 0.5 (a + 1)(1 - (-1) + 1e-8) - 1; dim 1: 0.5 (a + 1)(2 - 0 + 1e-8); dim 2 unmasked: a itself.
    expected = torch.tensor(
        [
            [0.9960784413529411, 1.000000005, -0.996078431372549],
            [-0.9960784313529412, 0.5 * (509 / 255) * 2.00000001, 0.996078431372549],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(actions, expected, rtol=0, atol=1e-12)


def test_encode_picks_the_nearest_bin_center(tok):
    actions = torch.tensor([[[0.0, 1.0, 0.3], [1.0, -3.0, -0.999], [-5.0, 2.0, 0.0]]], dtype=torch.float64)
    # dim0 0 → a_norm ≈ 0 → k 127 → 31872; 1 → ≈1 → k 254 → 31745; -5 → k 0 → 31999
    # dim1 1 → a_norm ≈ 0 → 31872; -3 → -4 → 31999; 2 → ≈1 → 31745
    # dim2 (unmasked) 0.3 → k 165 (center 0.29804) → 31834; -0.999 → k 0; 0.0 → k 127
    expected = torch.tensor([[31872, 31872, 31834, 31745, 31999, 31999, 31999, 31745, 31872]])
    assert torch.equal(tok.encode(actions), expected)


def test_round_trip(tok):
    tokens = torch.arange(31745, 32000).reshape(-1, 1).repeat(1, 3).reshape(-1, 5, 3)
    decoded = tok.decode(tokens)
    assert torch.equal(tok.encode(decoded), tokens.reshape(tokens.shape[0], -1))
    generator = torch.Generator().manual_seed(0)
    actions = torch.rand(4, 8, 3, generator=generator, dtype=torch.float64) * 2 - 1
    back = tok.decode(tok.encode(actions).reshape(4, 8, 3))
    half_bin = torch.tensor([1.0, 1.0, 1 / 255], dtype=torch.float64) * (1 + 1e-6)  # (q99 - q01) / 255 / 2 per dim
    assert ((back - actions).abs() <= half_bin).all()


def test_unnorm_key_resolution():
    assert resolve_unnorm_key(STATS, "libero_spatial") == "libero_spatial_no_noops"
    assert resolve_unnorm_key(STATS, "libero_spatial_no_noops") == "libero_spatial_no_noops"
    assert resolve_unnorm_key(STATS, None) == "libero_spatial_no_noops"
    with pytest.raises(KeyError, match="libero_goal"):
        resolve_unnorm_key(STATS, "libero_goal")


def test_policy_decodes_with_its_unnorm_key(policy, batch):
    prediction = policy.predict_action_batch(**batch, greedy=True)
    stats = policy.config.norm_stats["libero_spatial_no_noops"]["action"]
    q01, q99 = torch.tensor(stats["q01"], dtype=torch.float64), torch.tensor(stats["q99"], dtype=torch.float64)
    normalized = policy.action_tokenizer.tokens_to_normalized(prediction.action_tokens)
    expected = 0.5 * (normalized + 1) * (q99 - q01 + 1e-8) + q01
    expected[..., 6] = normalized[..., 6]  # gripper: mask False
    assert prediction.actions.shape == (2, 8, 7) and prediction.actions.dtype == torch.float64
    torch.testing.assert_close(prediction.actions, expected, rtol=0, atol=1e-12)
