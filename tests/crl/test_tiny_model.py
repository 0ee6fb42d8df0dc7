"""Methods on the tiny OpenVLA-OFT (real architecture, peft LoRA): weight merge = W0 + c·ΣΔW through
``build_policy`` with the method's overrides, its evaluation scale, SLCA's optimizer groups in a real AdamW,
and EWC's actor hooks (Fisher file, anchor at the stage's adapter, penalty)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from vlacrl.crl.base import StageRecord
from vlacrl.crl.registry import build_method
from vlacrl.models.lora import lora_layers, save_lora
from vlacrl.models.openvla_oft import load_policy
from vlacrl.workers.policy_setup import build_policy

CHECKED_LAYERS = (
    "language_model.model.layers.0.self_attn.q_proj",
    "language_model.lm_head",
    "projector.fc1",
    "vision_backbone.featurizer.blocks.0.attn.qkv",
)


def _apply(cfg: dict, overrides: dict) -> dict:
    """Dotted-key overrides applied as the continual runner applies them (``OmegaConf.update``)."""
    out = OmegaConf.create(cfg)
    with open_dict(out):
        for key, value in overrides.items():
            OmegaConf.update(out, key, value, force_add=True)
    return OmegaConf.to_container(out, resolve=True)


def _build(cfg: dict):
    return build_policy(cfg, str(cfg["actor"]["checkpoint_load_path"]), use_gpu=False)


def _random_adapter(cfg: dict, out_dir, seed: int) -> str:
    model = _build(cfg)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(0.05 * torch.randn(param.shape, generator=generator))
    return str(save_lora(model, out_dir))


def _layers(model) -> dict:
    return {name.removeprefix("base_model.model."): layer for name, layer in lora_layers(model)}


def _delta(adapter_model, layer: str) -> torch.Tensor:
    """ΔW = (α/r)·B A of a layer of an unscaled adapter."""
    return _layers(adapter_model)[layer].get_delta_weight("default").detach()


@pytest.fixture(scope="module")
def adapters(crl_cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return [_random_adapter(crl_cfg, root / f"task_{i}", seed=10 + i) for i in range(3)]


def test_weight_merge_builds_w0_plus_c_sum_delta_and_evaluates_at_scale_c(crl_cfg, crl_tiny_dir, adapters):
    c = 0.3
    method = build_method({**crl_cfg, "crl": {"method": "weight_merge", "merge_coefficient": c}})
    history = [StageRecord(i, [i], f"/runs/{i}", adapters[i]) for i in range(3)]
    base = dict(load_policy(crl_tiny_dir, dtype=torch.float32, unnorm_key="libero_spatial").named_modules())
    deltas = [{layer: _delta(_build(_apply(crl_cfg, {"actor.model.lora_path": a})), layer) for layer in CHECKED_LAYERS}
              for a in adapters]  # fmt: skip

    train_cfg = _apply({**crl_cfg, "actor": {**crl_cfg["actor"], "model": {**crl_cfg["actor"]["model"],
                       "lora_path": adapters[2]}}}, method.train_overrides(2, history[:2]))  # fmt: skip
    assert train_cfg["actor"]["model"]["lora_path"] is None  # the fresh adapter wins over a configured one
    model = _build(train_cfg)
    layers = _layers(model)
    for layer in CHECKED_LAYERS:
        expected = base[layer].weight.detach() + c * (deltas[0][layer] + deltas[1][layer])
        torch.testing.assert_close(layers[layer].base_layer.weight.detach(), expected, rtol=1e-5, atol=1e-6)
        assert float(layers[layer].lora_B["default"].weight.detach().abs().max()) == 0.0  # fresh adapter (B = 0)
        assert layers[layer].scaling["default"] == pytest.approx(1.0)  # trained at scale 1
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)

    eval_overrides = {**method.train_overrides(2, history[:2]), **method.eval_overrides(history[2], history[:2])}
    evaluated = _layers(_build(_apply(crl_cfg, eval_overrides)))
    for layer in CHECKED_LAYERS:  # W0 + c·(ΔW0 + ΔW1) merged, + c·ΔW2 through the scaled adapter
        expected = base[layer].weight.detach() + c * sum(d[layer] for d in deltas)
        effective = evaluated[layer].base_layer.weight.detach() + evaluated[layer].get_delta_weight("default")
        torch.testing.assert_close(effective.detach(), expected, rtol=1e-5, atol=1e-6)
        assert evaluated[layer].scaling["default"] == pytest.approx(c)


def _expected_lr(name: str, lrs: dict) -> float:
    if "value_head" in name:
        return lrs["value"]
    if "vision_backbone" in name or ".projector." in name:
        return lrs["vision"]
    return lrs["head"] if "lm_head" in name else lrs["llm"]


def test_slca_groups_get_their_learning_rates_in_adamw(crl_cfg):
    lrs = {"vision": 1e-3, "llm": 2e-3, "head": 3e-3, "value": 4e-3}
    cfg = _apply(
        crl_cfg,
        {
            "algorithm.require_values": True,
            "actor.optim.value_lr": lrs["value"],
            "actor.optim.llm_head_lora_lr": lrs["head"],
        },
    )  # fmt: skip  (reference key + spelling)
    cfg["crl"] = {"method": "slca", "vision_lora_lr": lrs["vision"], "llm_lora_lr": lrs["llm"]}
    model = _build(cfg)
    groups = build_method(cfg).param_groups(model, cfg["actor"]["optim"])
    assert [g["name"] for g in groups] == ["vision_lora", "llm_lora", "lm_head_lora", "value_head"]
    by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert len(by_param) == len(trainable) and any("value_head" in n for n in trainable)
    for name, param in trainable.items():
        assert by_param[id(param)] == _expected_lr(name, lrs), name
    assert all(g["betas"] == (0.9, 0.999) for g in groups)

    # one real AdamW step with unit gradients: Δp = −lr·1/(1 + eps) − lr·weight_decay·p for each group's lr
    optimizer = torch.optim.AdamW(groups)
    before = {n: p.detach().clone() for n, p in trainable.items()}
    for param in trainable.values():
        param.grad = torch.ones_like(param)
    optimizer.step()
    for name, param in trainable.items():
        lr = _expected_lr(name, lrs)
        expected = before[name] * (1 - lr * 0.01) - lr / (1 + 1e-8)
        torch.testing.assert_close(param.detach(), expected, rtol=1e-6, atol=1e-9, msg=name)


def test_slca_lr_defaults_and_conflicts(crl_cfg):
    from vlacrl.crl.common import MethodConfigError
    from vlacrl.crl.slca import component_lrs

    assert set(component_lrs({**crl_cfg, "crl": {"method": "slca"}}).values()) == {crl_cfg["actor"]["optim"]["lr"]}
    conflicting = _apply(crl_cfg, {"crl.lm_head_lora_lr": 1e-5, "actor.optim.llm_head_lora_lr": 2e-5})
    with pytest.raises(MethodConfigError, match="conflicting"):
        component_lrs(conflicting)


def _unit_grad_loss(model, seed: int) -> dict[str, torch.Tensor]:
    """Backward of Σ c·θ over the LoRA tensors (so each gradient is a known c); returns the c's."""
    generator = torch.Generator().manual_seed(seed)
    coeffs = {n: torch.randn(p.shape, generator=generator) for n, p in model.named_parameters() if "lora_" in n}
    params = dict(model.named_parameters())
    sum((params[n] * c).sum() for n, c in coeffs.items()).backward()
    return coeffs


def test_ewc_actor_hooks_on_tiny_model(crl_cfg, adapters, tmp_path):
    from vlacrl.crl.ewc import ewc_penalty, fisher_update, load_fisher

    # stage 0: no penalty; two mini-batches of one micro-batch each on the last step → Fisher file
    cfg0 = {**crl_cfg, "crl": {"method": "ewc"}}
    method, model = build_method(cfg0), _build(cfg0)
    method.setup_actor(model)
    assert method.extra_losses(model, {}, None) == {}
    grads = []
    for seed in (0, 1):
        model.zero_grad(set_to_none=True)
        grads.append(_unit_grad_loss(model, seed))
        method.after_backward(model, is_last_step=True)
        method.after_optimizer_step(model, is_last_step=True)
    method.after_backward(model, is_last_step=False)  # not the last step: ignored
    record = method.finish_task(model, tmp_path / "stage0", is_rank0=True)
    saved = load_fisher(record["fisher_path"])
    for name in grads[0]:
        expected = fisher_update(fisher_update(None, grads[0][name]), grads[1][name]) / 2
        torch.testing.assert_close(saved[name], expected.clamp(max=1e4), msg=name)

    # stage 1 resumed mid-stage: the model holds other weights (adapters[1]); the anchor is still stage 0's adapter
    history = [StageRecord(0, [0], str(tmp_path / "stage0"), adapters[0], record)]
    cfg1 = _apply({**crl_cfg, "crl": {"method": "ewc", "ewc_lambda": 1e6}}, method.train_overrides(1, history))
    method1 = build_method(cfg1)
    resumed = _build(_apply(cfg1, {"actor.model.lora_path": adapters[1]}))
    method1.setup_actor(resumed)
    anchor_model = _build(cfg1)
    anchor = {n: p.detach() for n, p in anchor_model.named_parameters() if "lora_" in n}
    params = {n: p for n, p in resumed.named_parameters() if "lora_" in n}
    penalty = method1.extra_losses(resumed, {}, None)["ewc"]
    expected = ewc_penalty({n: p.detach() for n, p in params.items()}, saved, anchor, 1e6)
    assert float(expected) > 0 and float(penalty.detach()) == pytest.approx(float(expected), rel=1e-5)
    penalty.backward()
    name = next(n for n in params if "lm_head.lora_B" in n)
    torch.testing.assert_close(params[name].grad, 2e6 * saved[name] * (params[name].detach() - anchor[name]))
    # online accumulation of the next file: F_prev + F_cur, clamped
    method1.after_backward(resumed, is_last_step=True)
    method1.after_optimizer_step(resumed, is_last_step=True)
    merged = load_fisher(method1.finish_task(resumed, tmp_path / "stage1", is_rank0=True)["fisher_path"])
    assert float(merged[name].min()) >= float(saved[name].min()) and float(merged[name].max()) <= 1e4
