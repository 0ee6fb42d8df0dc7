"""The ``er`` / ``der`` methods on the tiny model: chaining, replay batches, loss terms, DER reference paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from vlacrl.algorithms.replay_losses import der_loss, er_loss
from vlacrl.cli.precompute_logits import main as precompute
from vlacrl.config.compose import compose
from vlacrl.crl.base import StageRecord
from vlacrl.crl.registry import build_method
from vlacrl.crl.replay import DarkExperienceReplay, ExperienceReplay, ReplayConfigError
from vlacrl.data.libero_hdf5 import write_libero_demo_file
from vlacrl.envs.libero import suites
from vlacrl.models.openvla_oft import write_tiny_checkpoint
from vlacrl.workers.policy_setup import build_policy

SUITE = "libero_spatial"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny", seed=0)


@pytest.fixture(scope="module")
def replay_dir(tmp_path_factory, tiny_dir):
    """A DER cache for tasks 0 and 2 of libero_spatial (LIBERO-format demos → vlacrl-precompute-logits)."""
    rng = np.random.default_rng(0)
    demos_dir = tmp_path_factory.mktemp("demos")
    for task_id, steps in ((0, 9), (2, 10)):
        language = suites.task_spec(SUITE, task_id).language
        actions = rng.uniform(-0.9, 0.9, (steps, 7))
        actions[:, -1] = np.where(rng.random(steps) < 0.5, -1.0, 1.0)
        frames = rng.integers(0, 256, (steps, 16, 16, 3), dtype=np.uint8)
        write_libero_demo_file(demos_dir / f"{language.replace(' ', '_')}_demo.hdf5", language, [(actions, frames)])
    out = tmp_path_factory.mktemp("cache") / f"{SUITE}_simplevla"
    assert precompute(["--model-dir", str(tiny_dir), "--input", str(demos_dir), "--output-dir", str(out)]) == 0
    return out


def make_cfg(method: str, tiny_dir, replay_dir, *extra: str) -> dict:
    overrides = [
        f"actor.checkpoint_load_path={tiny_dir}", "actor.micro_batch_size=2", f"crl.dataset_dir={replay_dir}", *extra
    ]  # fmt: skip
    try:  # a main config with a `crl` default (issue D) or without one
        cfg = compose("cpu_tiny", [f"crl={method}", *overrides])
    except ConfigCompositionException:
        cfg = compose("cpu_tiny", [f"+crl={method}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def forward_replay(model, batch):
    """What the actor does for the replay half: forward, then merge outputs into the replay batch."""
    out = model.get_base_model().action_logprobs(
        batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["action_tokens"]
    )
    return {**batch, **out}


def test_registry_config_and_chaining(tiny_dir, replay_dir):
    er = build_method(make_cfg("er", tiny_dir, replay_dir))
    der = build_method(make_cfg("der", tiny_dir, replay_dir))
    assert type(er) is ExperienceReplay and er.name == "er" and er.bc_coeff == 0.03 and er.demos_per_task == 1
    assert type(der) is DarkExperienceReplay and der.name == "der" and der.uses_cached_logits
    history = [
        StageRecord(0, [0], "runs/t0", "runs/t0/checkpoints/global_step_10/actor"),
        StageRecord(1, [3], "runs/t1", "runs/t1/checkpoints/global_step_10/actor"),
    ]
    assert er.train_overrides(0, []) == {"crl.seen_task_ids": []}
    assert der.train_overrides(2, history) == {
        "actor.model.lora_path": "runs/t1/checkpoints/global_step_10/actor",
        "crl.seen_task_ids": [0, 3],
    }
    with pytest.raises(ReplayConfigError, match="replay_tasks"):
        build_method(make_cfg("er", tiny_dir, replay_dir, "crl.replay_tasks=future"))


def test_er_replay_batch_and_loss(tiny_dir, replay_dir):
    cfg = make_cfg("er", tiny_dir, replay_dir)
    method = build_method(cfg)
    model = build_policy(cfg, str(tiny_dir), use_gpu=False)
    method.setup_actor(model)
    batch = method.replay_batch()
    assert batch["input_ids"].shape == (2, 128) and batch["attention_mask"].shape == (2, 128)
    assert batch["pixel_values"].shape == (2, 1, 6, 224, 224) and batch["pixel_values"].dtype == torch.float32
    assert batch["action_tokens"].shape == (2, 56) and batch["actions"].shape == (2, 8, 7)
    assert "reference_logits" not in batch
    replay = forward_replay(model, batch)
    terms = method.extra_losses(model, {}, replay)
    assert list(terms) == ["bc"]
    expected, _ = er_loss(replay["raw_logits"], batch["action_tokens"], 0.03)
    torch.testing.assert_close(terms["bc"], expected)
    metrics = method.pop_metrics()
    assert metrics["bc/coeff"] == 0.03 and metrics["bc/unweighted_loss"] == pytest.approx(
        expected.item() / 0.03, rel=1e-5
    )
    assert method.pop_metrics() == {}
    terms["bc"].backward()
    lora_b = [p.grad for n, p in model.named_parameters() if "lora_B" in n and p.grad is not None]
    assert lora_b and any(g.abs().sum() > 0 for g in lora_b)
    assert method.extra_losses(model, {}, None) == {}


def test_der_cached_logits_match_fresh_adapter(tiny_dir, replay_dir):
    """A fresh adapter (B = 0) leaves the base model: the cached logits equal the current ones, DER ≈ 0."""
    cfg = make_cfg("der", tiny_dir, replay_dir, "crl.demos_per_task=1")
    method = build_method(cfg)
    model = build_policy(cfg, str(tiny_dir), use_gpu=False)
    method.setup_actor(model)
    batch = method.replay_batch()
    assert batch["reference_logits"].shape == (2, 56, 256)
    terms = method.extra_losses(model, {}, forward_replay(model, batch))
    metrics = method.pop_metrics()
    assert terms["bc"].item() < 1e-8 and metrics["bc/max_abs_error"] < 1e-4


def test_der_uncached_reference_is_the_adapter_disabled_model(tiny_dir, replay_dir):
    """With a trained (non-zero) adapter, the no-cache reference = the base model's logits = the cache."""
    cfg = make_cfg("der", tiny_dir, replay_dir, "crl.use_cached_logits=false")
    method = build_method(cfg)
    cached = build_method(make_cfg("der", tiny_dir, replay_dir))
    model = build_policy(cfg, str(tiny_dir), use_gpu=False)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.05 * torch.randn(param.shape, generator=generator))
    method.setup_actor(model)
    cached.setup_actor(model)
    batch, cached_batch = method.replay_batch(), cached.replay_batch()
    assert "reference_logits" not in batch
    torch.testing.assert_close(batch["pixel_values"], cached_batch["pixel_values"])  # same seed, same samples
    replay = forward_replay(model, batch)
    reference = method.reference_logits(model, replay)
    assert not reference.requires_grad
    torch.testing.assert_close(reference, cached_batch["reference_logits"], atol=1e-4, rtol=1e-4)
    terms = method.extra_losses(model, {}, replay)
    expected, _ = der_loss(replay["processed_logits"], cached_batch["reference_logits"], 0.03)
    assert terms["bc"].item() > 0
    torch.testing.assert_close(terms["bc"], expected, atol=1e-6, rtol=1e-4)
    assert all(not getattr(m, "disable_adapters", False) for m in model.modules() if hasattr(m, "lora_A"))
    terms["bc"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_" in n)


def test_replay_only_seen_tasks(tiny_dir, replay_dir):
    """``replay_tasks=seen``: no replay in the first stage, then only the earlier stages' task files."""
    first = build_method(make_cfg("er", tiny_dir, replay_dir, "crl.replay_tasks=seen"))
    model = build_policy(make_cfg("er", tiny_dir, replay_dir), str(tiny_dir), use_gpu=False)
    first.setup_actor(model)
    assert first.replay_batch() is None
    later = build_method(make_cfg("er", tiny_dir, replay_dir, "crl.replay_tasks=seen", "crl.seen_task_ids=[2]"))
    files = later.task_files()
    assert [f.name for f in files] == [suites.task_spec(SUITE, 2).language.replace(" ", "_") + ".hdf5"]
    later.setup_actor(model)
    assert later.replay_batch()["input_ids"].shape == (2, 128)
    missing = build_method(make_cfg("er", tiny_dir, replay_dir, "crl.replay_tasks=seen", "crl.seen_task_ids=[5]"))
    with pytest.raises(ValueError, match="no replay file"):
        missing.setup_actor(model)
