"""Actor-side reshape, flattening with one shared permutation, update schedule, loss-input shaping."""

from __future__ import annotations

import pytest
import torch

from vlacrl.algorithms.layout import (
    flatten_and_shuffle,
    flatten_steps,
    iter_microbatches,
    iter_minibatches,
    make_update_schedule,
    rollout_batch_to_actor_layout,
    rollout_to_actor_layout,
    shape_loss_inputs,
    unflatten_steps,
)


def test_rollout_to_actor_layout_column_mapping():
    e, x, b = 3, 4, 2
    # rollout tensor [E·X, b, 2]: row e·X + t, env j holds (code = 100e + 10t + j, same + 0.5)
    rollout = torch.zeros(e * x, b, 2)
    for ep in range(e):
        for t in range(x):
            for j in range(b):
                rollout[ep * x + t, j] = torch.tensor([100 * ep + 10 * t + j, 100 * ep + 10 * t + j + 0.5])
    actor = rollout_to_actor_layout(rollout, rollout_epoch=e)
    assert actor.shape == (x, e * b, 2)
    for ep in range(e):
        for t in range(x):
            for j in range(b):
                # column e·b + j is env j of rollout epoch e
                assert actor[t, ep * b + j].tolist() == [100 * ep + 10 * t + j, 100 * ep + 10 * t + j + 0.5]


def test_rollout_batch_to_actor_layout_skips_env_info():
    batch = {
        "rewards": torch.zeros(2 * 3, 4, 8),
        "dones": torch.zeros(2 * 4, 4, 8),
        "env_info/success_once": torch.ones(8),
    }
    out = rollout_batch_to_actor_layout(batch, rollout_epoch=2)
    assert out["rewards"].shape == (3, 8, 8) and out["dones"].shape == (4, 8, 8)
    assert out["env_info/success_once"] is batch["env_info/success_once"]


def test_rollout_to_actor_layout_rejects_a_bad_epoch_count():
    with pytest.raises(ValueError, match="3 rollout epochs"):
        rollout_to_actor_layout(torch.zeros(8, 2), rollout_epoch=3)


def test_flatten_steps_round_trip():
    x = torch.arange(2 * 3 * 4).view(2, 3, 4)  # [X=2, M=3, C=4]
    flat = flatten_steps(x)
    assert flat.shape == (8, 3)
    assert flat[1 * 4 + 2, 1] == x[1, 1, 2]  # row x·C + c
    assert torch.equal(unflatten_steps(flat, 4), x)


def _actor_batch(n=4, m=3, c=2):
    base = torch.arange(n * m).view(n, m).float()  # sample id n·M + m before shuffling
    return {
        "ids": base,
        "advantages": base.unsqueeze(-1) * 10 + torch.arange(c),  # [N, M, C]
        "dones": torch.cat([base, torch.full((1, m), -1.0)]).unsqueeze(-1).expand(n + 1, m, c),  # [N+1, M, C]
        "prev_values": torch.cat([base, torch.full((1, m), -1.0)]).unsqueeze(-1),  # [N+1, M, 1]
        "env_info/return": torch.zeros(m),
    }


def test_flatten_without_shuffle_is_step_major():
    flat = flatten_and_shuffle(_actor_batch(), shuffle=False)
    assert set(flat) == {"ids", "advantages", "dones", "prev_values"}  # env_info is not a training key
    assert flat["ids"].tolist() == list(range(12))
    assert flat["dones"].shape == (12, 2) and flat["prev_values"].shape == (12, 1)  # last time entry dropped
    assert (flat["dones"] >= 0).all()


def test_flatten_shares_one_permutation_across_keys_and_is_seedable():
    flat = flatten_and_shuffle(_actor_batch(), generator=torch.Generator().manual_seed(7))
    ids = flat["ids"]
    assert sorted(ids.tolist()) == list(range(12)) and ids.tolist() != list(range(12))
    assert torch.equal(flat["advantages"][:, 0], ids * 10) and torch.equal(flat["advantages"][:, 1], ids * 10 + 1)
    assert torch.equal(flat["dones"][:, 0], ids) and torch.equal(flat["prev_values"][:, 0], ids)
    again = flatten_and_shuffle(_actor_batch(), generator=torch.Generator().manual_seed(7))
    assert torch.equal(again["ids"], ids)


def test_flatten_rejects_inconsistent_keys():
    batch = _actor_batch()
    batch["loss_mask"] = torch.zeros(5, 3, 2)
    with pytest.raises(ValueError, match="disagree"):
        flatten_and_shuffle(batch)


def test_update_schedule_reference_numbers():
    # 1 actor rank: N·M = 64·1024 = 65536 samples, global batch 8192, micro 32 → 8 optimiser steps of 256 micro.
    s = make_update_schedule(65536, 8192, 32, 1)
    assert (s.num_minibatches, s.minibatch_size, s.num_microbatches) == (8, 8192, 256)
    # 2 ranks: each holds 32768 samples, mini-batch 4096 per rank → still 8 steps, accumulation 128.
    s = make_update_schedule(32768, 8192, 32, 2)
    assert (s.num_minibatches, s.minibatch_size, s.num_microbatches) == (8, 4096, 128)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((64, 48, 32, 1), "global_batch_size=48 is not divisible"),
        ((100, 64, 16, 2), "100 samples per actor rank are not divisible"),
        ((64, 64, 0, 1), "must be positive"),
    ],
)
def test_update_schedule_errors(args, message):
    with pytest.raises(ValueError, match=message):
        make_update_schedule(*args)


def test_mini_and_micro_batches_cover_the_batch_in_order():
    batch = {"x": torch.arange(24), "y": torch.arange(24).view(24, 1) * 2}
    schedule = make_update_schedule(24, 24, 4, 2)  # mini-batch 12 per rank, micro 4 → 2 × 3
    seen = []
    for mini in iter_minibatches(batch, schedule):
        assert mini["x"].shape == (12,)
        micros = list(iter_microbatches(mini, schedule))
        assert len(micros) == schedule.num_microbatches == 3
        for micro in micros:
            assert torch.equal(micro["y"][:, 0], micro["x"] * 2)
            seen.extend(micro["x"].tolist())
    assert seen == list(range(24))


def test_shape_loss_inputs_token_level():
    mb, c, d = 3, 2, 4
    out = shape_loss_inputs(
        {
            "logprobs": torch.zeros(mb, c * d),
            "old_logprobs": torch.zeros(mb, c * d),
            "entropy": torch.zeros(mb, c * d),
            "advantages": torch.zeros(mb, c),
            "loss_mask": torch.ones(mb, c, dtype=torch.bool),
            "loss_mask_sum": torch.ones(mb, c),
            "returns": torch.zeros(mb, c),
        },
        action_dim=d,
        logprob_type="token_level",
        entropy_type="token_level",
    )
    assert out["logprobs"].shape == out["old_logprobs"].shape == out["entropy"].shape == (mb, c, d)
    assert out["advantages"].shape == out["loss_mask"].shape == out["loss_mask_sum"].shape == (mb, c, 1)
    assert out["returns"].shape == (mb, c)


def test_shape_loss_inputs_action_and_chunk_level():
    logprobs = torch.arange(8.0).view(1, 8)  # C = 2 actions of D = 4 tokens: sums 6 and 22
    inputs = {"logprobs": logprobs, "old_logprobs": logprobs, "advantages": torch.tensor([[1.0, 2.0]])}
    action = shape_loss_inputs(inputs, action_dim=4, logprob_type="action_level", entropy_type="action_level")
    assert action["logprobs"].tolist() == [[6.0, 22.0]] and action["advantages"].shape == (1, 2)
    chunk = shape_loss_inputs(inputs, action_dim=4, logprob_type="chunk_level", entropy_type="chunk_level")
    assert chunk["logprobs"].tolist() == [28.0] and chunk["advantages"].tolist() == [3.0]
    with pytest.raises(ValueError, match="logprob_type"):
        shape_loss_inputs(inputs, action_dim=4, logprob_type="sequence", entropy_type="token_level")
