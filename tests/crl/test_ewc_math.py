"""EWC's pure helpers against hand computations: penalty value and gradient, Fisher clamps, online accumulation,
the ``ewc_data.pt`` round trip (and the reference's file format)."""

from __future__ import annotations

import math

import pytest
import torch

from vlacrl.crl.ewc import (
    FISHER_MAX,
    accumulate_online,
    canonical_name,
    clean_fisher,
    clipped_grad_square,
    ewc_penalty,
    finalize_fisher,
    fisher_update,
    load_fisher,
    save_fisher,
)


def test_penalty_value_and_gradient_by_hand():
    theta = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    anchor = torch.tensor([[0.5, 2.0], [1.0, 5.0]])
    fisher = torch.tensor([[2.0, 1.0], [0.5, 4.0]])
    # F·(θ−θ*)² = [[2·0.25, 0], [0.5·4, 4·1]] → 6.5; λ = 10 → 65
    loss = ewc_penalty({"a.lora_A": theta}, {"a.lora_A": fisher}, {"a.lora_A": anchor}, lam=10.0)
    assert float(loss.detach()) == pytest.approx(65.0)
    loss.backward()
    # ∂/∂θ = 2λF(θ−θ*) = 20·[[2·0.5, 0], [0.5·2, 4·(−1)]]
    torch.testing.assert_close(theta.grad, torch.tensor([[20.0, 0.0], [20.0, -80.0]]))


def test_penalty_skips_non_finite_terms_and_mismatches():
    good = torch.tensor([1.0, -1.0], requires_grad=True)
    bad = torch.tensor([2.0, 3.0], requires_grad=True)
    other = torch.ones(3, requires_grad=True)
    params = {"good": good, "bad": bad, "other": other, "missing": torch.ones(2)}
    fisher = {"good": torch.tensor([3.0, 1.0]), "bad": torch.tensor([1.0, math.inf]), "other": torch.ones(2)}
    anchor = {"good": torch.zeros(2), "bad": torch.zeros(2), "other": torch.zeros(2), "missing": torch.zeros(2)}
    loss = ewc_penalty(params, fisher, anchor, lam=2.0)
    assert float(loss.detach()) == pytest.approx(2.0 * (3.0 + 1.0))  # only "good" counts
    loss.backward()
    torch.testing.assert_close(good.grad, torch.tensor([12.0, -4.0]))
    assert bad.grad is None and other.grad is None


def test_penalty_non_finite_total_is_zero():
    # each term 1e4·(1e17)² = 1e38 is finite, four of them overflow float32 (max ≈ 3.4e38)
    params = {f"p{i}": torch.tensor([1e17]) for i in range(4)}
    fisher = {f"p{i}": torch.tensor([FISHER_MAX]) for i in range(4)}
    anchor = {f"p{i}": torch.zeros(1) for i in range(4)}
    assert float(ewc_penalty(params, fisher, anchor, lam=1.0)) == 0.0
    assert float(ewc_penalty({}, {}, {}, lam=1.0)) == 0.0


def test_fisher_update_rescale_square_and_clamps():
    acc = fisher_update(None, torch.tensor([3.0, 4.0]))  # norm 5 ≤ 100: plain squares
    torch.testing.assert_close(acc, torch.tensor([9.0, 16.0]))
    acc = fisher_update(acc, torch.tensor([300.0, 400.0]))  # norm 500 → ×0.2 → [60, 80] → [3600, 6400]
    torch.testing.assert_close(acc, torch.tensor([3609.0, 6416.0]))
    acc = fisher_update(acc, torch.tensor([300.0, 400.0]))  # [7209, 12816] → accumulator clamp 1e4
    torch.testing.assert_close(acc, torch.tensor([7209.0, 1e4]))
    torch.testing.assert_close(finalize_fisher(acc, 2), torch.tensor([3604.5, 5000.0]))
    # an Inf gradient: norm Inf → the rescale gives [NaN, 0]; finalising turns NaN into 1e4 before dividing
    nan_acc = fisher_update(torch.zeros(2), torch.tensor([math.inf, 1.0]))
    assert math.isnan(float(nan_acc[0])) and float(nan_acc[1]) == 0.0
    torch.testing.assert_close(finalize_fisher(nan_acc, 2), torch.tensor([5000.0, 0.0]))
    # custom limits: clamp of the single square at max_value
    torch.testing.assert_close(clipped_grad_square(torch.tensor([4.0, 0.0]), max_norm=10.0, max_value=9.0),
                               torch.tensor([9.0, 0.0]))  # fmt: skip
    with pytest.raises(ValueError):
        finalize_fisher(acc, 0)


def test_clean_fisher():
    raw = torch.tensor([math.nan, math.inf, -math.inf, 2e4, 3.0])
    torch.testing.assert_close(clean_fisher(raw), torch.tensor([1e4, 1e4, 0.0, 1e4, 3.0]))


def test_online_accumulation():
    previous = {"a": torch.tensor([9000.0, 1.0]), "b": torch.tensor([5.0]), "shape": torch.ones(3)}
    current = {"a": torch.tensor([2000.0, 2.0]), "c": torch.tensor([7.0]), "shape": torch.full((2,), 4.0)}
    merged = accumulate_online(previous, current)
    assert set(merged) == {"a", "b", "c", "shape"}
    torch.testing.assert_close(merged["a"], torch.tensor([1e4, 3.0]))  # clamp(F_prev + F_cur, 1e4)
    torch.testing.assert_close(merged["b"], torch.tensor([5.0]))  # only in F_prev: kept
    torch.testing.assert_close(merged["c"], torch.tensor([7.0]))
    torch.testing.assert_close(merged["shape"], torch.full((2,), 4.0))  # shape mismatch: current only
    assert accumulate_online(None, current)["a"].tolist() == [2000.0, 2.0]


def test_file_round_trip_and_reference_format(tmp_path):
    fisher = {"base_model.model.x.lora_A.default.weight": torch.tensor([[1.0, 2.0]])}
    path = save_fisher(fisher, tmp_path / "run" / "ewc_data.pt")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"fisher_dict"} and torch.equal(raw["fisher_dict"]["base_model.model.x.lora_A.default.weight"],
                                                       fisher["base_model.model.x.lora_A.default.weight"])  # fmt: skip
    assert torch.equal(load_fisher(path)["base_model.model.x.lora_A.default.weight"], torch.tensor([[1.0, 2.0]]))
    # a file as the reference writes it: FSDP1 wrapper segments in the names, NaN/Inf entries, values above 1e4
    name = "base_model.model._fsdp_wrapped_module.layers.0._checkpoint_wrapped_module.q.lora_B.default.weight"
    torch.save({"fisher_dict": {name: torch.tensor([math.nan, math.inf, 5e4, 1.0])}}, tmp_path / "ref.pt")
    loaded = load_fisher(tmp_path / "ref.pt")
    assert list(loaded) == ["base_model.model.layers.0.q.lora_B.default.weight"]
    torch.testing.assert_close(loaded["base_model.model.layers.0.q.lora_B.default.weight"],
                               torch.tensor([1e4, 1e4, 1e4, 1.0]))  # fmt: skip
    with pytest.raises(FileNotFoundError):
        load_fisher(tmp_path / "absent.pt")


def test_canonical_name():
    assert canonical_name("_fsdp_wrapped_module.a._orig_mod.b.lora_A.weight") == "a.b.lora_A.weight"
    assert canonical_name("base_model.model.a.lora_A.default.weight") == "base_model.model.a.lora_A.default.weight"
