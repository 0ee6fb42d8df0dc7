"""Builders for small hand-written rollouts in the actor layout ([N(+1), M, C])."""

from __future__ import annotations

import pytest
import torch


def build_dones(n: int, c: int, done_after: dict[int, list[int]], m: int) -> torch.Tensor:
    """dones [N+1, M, C]: entry 0 is the reset batch (all False); "done after env step s" of column j is
    dones[1 + s // C, j, s % C] (chunk step s // C reports the flags of its C sub-steps)."""
    dones = torch.zeros(n + 1, m, c, dtype=torch.bool)
    for col, steps in done_after.items():
        for s in steps:
            dones[1 + s // c, col, s % c] = True
    return dones


def build_rewards(n: int, c: int, rewards_at: dict[int, dict[int, float]], m: int) -> torch.Tensor:
    """rewards [N, M, C]: reward of env step s of column j is rewards[s // C, j, s % C]."""
    rewards = torch.zeros(n, m, c)
    for col, per_step in rewards_at.items():
        for s, r in per_step.items():
            rewards[s // c, col, s % c] = r
    return rewards


@pytest.fixture
def scenario():
    """N = 2 chunk steps, C = 3 sub-steps (6 env steps), M = 6 columns, G = 2 (3 groups).

    col 0: success at step 2 (done after steps 2..5)              → score 5, valid steps 0..2 (3)
    col 1: never succeeds, truncated after step 5                  → score 0, valid 0..5 (6)
    col 2, col 3: never succeed                                    → score 0, valid 6 each
    col 4: success at step 0, lost at step 3 (−5, after the done)  → score 5, valid step 0 only (1)
    col 5: success at step 4                                       → score 5, valid 0..4 (5)
    Groups: (0, 1) mixed → kept; (2, 3) all fail (mean 0 < 0.5) → dropped; (4, 5) all succeed (5 > 4.5) → dropped.
    """
    n, c, m = 2, 3, 6
    dones = build_dones(
        n,
        c,
        {0: [2, 3, 4, 5], 1: [5], 2: [5], 3: [5], 4: [0, 1, 2, 5], 5: [4, 5]},
        m,
    )
    rewards = build_rewards(n, c, {0: {2: 5.0}, 4: {0: 5.0, 3: -5.0}, 5: {4: 5.0}}, m)
    return {"n": n, "c": c, "m": m, "g": 2, "dones": dones, "rewards": rewards}
