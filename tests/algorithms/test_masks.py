"""Loss mask "ignore after done" and the reward-group filter (docs/algorithms.md), against hand-written rollouts."""

from __future__ import annotations

import pytest
import torch

from vlacrl.algorithms.masks import (
    apply_group_filter,
    compute_loss_mask,
    group_keep_mask,
    step_dones,
    trajectory_rewards,
)


def _valid_steps(mask: torch.Tensor, col: int) -> list[int]:
    """Env-step indices s = n·C + c where mask[n, col, c] is True."""
    c = mask.shape[2]
    return [n * c + k for n in range(mask.shape[0]) for k in range(c) if mask[n, col, k]]


def test_step_dones_drops_all_but_the_last_reset_substep(scenario):
    rows = step_dones(scenario["dones"])
    # (N + 1)·C = 9 flattened rows, the last N·C + 1 = 7 are kept: row 0 = reset, row s + 1 = done after step s.
    assert rows.shape == (7, 6)
    assert not rows[0].any()
    assert rows[1:, 0].tolist() == [False, False, True, True, True, True]  # col 0 done after steps 2..5


def test_loss_mask_stops_after_the_success_step_which_is_included(scenario):
    loss_mask, loss_mask_sum = compute_loss_mask(scenario["dones"])
    assert loss_mask.shape == loss_mask_sum.shape == (2, 6, 3)
    assert loss_mask.dtype == torch.bool
    # Step s is valid iff no done happened after any step < s: the success step itself is valid.
    assert _valid_steps(loss_mask, 0) == [0, 1, 2]  # success at step 2
    assert _valid_steps(loss_mask, 1) == [0, 1, 2, 3, 4, 5]  # never succeeds: truncation after the last step
    assert _valid_steps(loss_mask, 4) == [0]  # success at the very first step
    assert _valid_steps(loss_mask, 5) == [0, 1, 2, 3, 4]  # success at step 4
    # loss_mask_sum = number of valid steps of the column's trajectory, broadcast to every entry.
    expected = torch.tensor([3, 6, 6, 6, 1, 5]).view(1, 6, 1).expand(2, 6, 3)
    assert torch.equal(loss_mask_sum, expected)


def test_a_done_that_later_clears_does_not_reopen_the_mask(scenario):
    # col 4: done after steps 0..2, then False after steps 3, 4 (success lost): cumsum keeps the mask closed.
    loss_mask, _ = compute_loss_mask(scenario["dones"])
    assert not loss_mask[1, 4].any()


def test_trajectory_rewards_only_count_valid_steps(scenario):
    loss_mask, _ = compute_loss_mask(scenario["dones"])
    # col 4: +5 at step 0 (valid) and −5 at step 3 (masked) → 5 with the mask, 0 without.
    assert trajectory_rewards(scenario["rewards"], loss_mask).tolist() == [5.0, 0.0, 0.0, 0.0, 5.0, 5.0]
    assert trajectory_rewards(scenario["rewards"], None).tolist() == [5.0, 0.0, 0.0, 0.0, 0.0, 5.0]


def test_group_filter_drops_all_fail_and_all_success_groups(scenario):
    loss_mask, loss_mask_sum = compute_loss_mask(scenario["dones"])
    filtered, keep = apply_group_filter(scenario["rewards"], loss_mask, group_size=2)
    # group means: (5 + 0)/2 = 2.5 ∈ [0.5, 4.5] kept; (0 + 0)/2 = 0 < 0.5 dropped; (5 + 5)/2 = 5 > 4.5 dropped.
    assert keep.tolist() == [True, False, False]
    assert torch.equal(filtered[:, :2], loss_mask[:, :2])
    assert not filtered[:, 2:].any()
    assert filtered.shape == loss_mask.shape and filtered.dtype == torch.bool


def test_group_filter_bounds_are_inclusive():
    # one group of 2 columns, one step each: totals (1, 0) → mean 0.5 = lower bound → kept;
    # totals (9, 0) → mean 4.5 = upper bound → kept; totals (9.2, 0) → 4.6 → dropped.
    rewards = torch.tensor([[1.0, 0.0, 9.0, 0.0, 9.2, 0.0]]).unsqueeze(-1)  # [N=1, M=6, C=1]
    assert group_keep_mask(rewards, None, 2).tolist() == [True, True, False]


def test_group_filter_without_a_loss_mask_gives_a_full_shape_mask(scenario):
    filtered, keep = apply_group_filter(scenario["rewards"], None, group_size=3)
    # unmasked totals [5, 0, 0 | 0, 0, 5] → means 5/3 and 5/3 → both kept.
    assert keep.tolist() == [True, True]
    assert filtered.shape == (2, 6, 3) and filtered.all()


def test_group_filter_rejects_a_group_size_that_does_not_divide_the_columns(scenario):
    with pytest.raises(ValueError, match="not divisible by group_size 4"):
        apply_group_filter(scenario["rewards"], None, group_size=4)


def test_loss_mask_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N\+1, M, C\]"):
        compute_loss_mask(torch.zeros(1, 4, 8, dtype=torch.bool))
