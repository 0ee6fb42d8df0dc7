"""LoRA via peft: targets, trainable parameters, save/load, merging with a coefficient, scaling."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model_state_dict

from vlacrl.models.errors import LoraError
from vlacrl.models.lora import (
    add_lora,
    check_adapter_dir,
    load_lora,
    lora_layers,
    merge_adapters,
    save_lora,
    scale_lora,
    setup_lora,
    trainable_parameter_names,
)
from vlacrl.models.openvla_oft import load_policy

# tiny model: DINOv2 3 blocks × (qkv, proj, fc1, fc2) + patch conv; SigLIP the same + 5 attention-pool layers;
# projector fc1-fc3; Llama 2 layers × 7 projections + lm_head
TINY_TARGETS = (3 * 4 + 1) + (3 * 4 + 1 + 5) + 3 + (2 * 7 + 1)


@pytest.fixture()
def fresh(tiny_dir):
    def make():
        return load_policy(tiny_dir, dtype=torch.float32, unnorm_key="libero_spatial", vh_mode="a0")

    return make


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def _randomize_lora_b(peft_model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.05 * torch.randn(param.shape, generator=generator))


def _adapter(fresh, tmp_path, seed, name):
    peft_model = add_lora(fresh(), rank=4)
    _randomize_lora_b(peft_model, seed)
    return peft_model, save_lora(peft_model, tmp_path / name)


def test_targets_and_trainable_parameters(fresh):
    peft_model = add_lora(fresh())
    names = [n for n, _ in lora_layers(peft_model)]
    assert len(names) == TINY_TARGETS
    suffixes = {n.split(".")[-1] for n in names}
    assert suffixes == {
        "proj",
        "qkv",
        "fc1",
        "fc2",
        "q",
        "kv",
        "fc3",
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "lm_head",
    }
    assert any(n.endswith("patch_embed.proj") for n in names)
    assert any(n.endswith("attn_pool.q") for n in names)
    trainable = trainable_parameter_names(peft_model)
    lora = [n for n in trainable if ".lora_A." in n or ".lora_B." in n]
    head = [n for n in trainable if ".value_head." in n]
    assert len(lora) == 2 * TINY_TARGETS and len(head) == 5 and len(trainable) == len(lora) + len(head)
    layer = dict(lora_layers(peft_model))["base_model.model.language_model.lm_head"]
    assert layer.r["default"] == 32 and layer.scaling["default"] == 1.0
    assert torch.count_nonzero(layer.lora_B["default"].weight) == 0
    std = layer.lora_A["default"].weight.std().item()
    assert abs(std - 1 / 32) < 0.1 / 32  # Gaussian init: A ~ N(0, (1/r)^2)


def test_full_7b_target_count_on_meta():
    from peft.tuners.tuners_utils import check_target_module_exists

    from vlacrl.models.lora import lora_config
    from vlacrl.models.openvla_oft import OpenVLAOFTConfig, OpenVLAOFTPolicy
    from vlacrl.models.openvla_oft.presets import openvla_7b_config

    with torch.device("meta"):
        full = OpenVLAOFTPolicy(OpenVLAOFTConfig.from_dict(openvla_7b_config()))
    config = lora_config()
    hits = [n for n, m in full.named_modules() if n and check_target_module_exists(config, n)]
    # DINOv2 24×4+1, SigLIP 27×4+1+5, projector 3, Llama 32×7 + lm_head
    assert len(hits) == 97 + 114 + 3 + 225


def test_fresh_adapter_leaves_the_model_unchanged(fresh, policy, batch):
    torch.testing.assert_close(_logits(add_lora(fresh()), batch), _logits(policy, batch), rtol=0, atol=0)


def test_save_then_load_gives_bit_identical_logits(fresh, batch, tmp_path):
    peft_model, path = _adapter(fresh, tmp_path, seed=0, name="adapter")
    assert (path / "adapter_model.safetensors").is_file() and (path / "adapter_config.json").is_file()
    expected = _logits(peft_model, batch)
    loaded = load_lora(fresh(), path)
    torch.testing.assert_close(_logits(loaded, batch), expected, rtol=0, atol=0)
    assert all(".lora_" in n or ".value_head." in n for n in trainable_parameter_names(loaded))
    assert len(trainable_parameter_names(loaded)) == 2 * TINY_TARGETS + 5


def test_reads_the_reference_adapter_model_bin(fresh, batch, tmp_path):
    peft_model = add_lora(fresh(), rank=4)
    _randomize_lora_b(peft_model, seed=3)
    ref_dir = tmp_path / "global_step_10" / "actor"
    ref_dir.mkdir(parents=True)
    # what the reference's actor writes: torch.save of the peft state dict + the adapter config
    torch.save(get_peft_model_state_dict(peft_model, save_embedding_layers=False), ref_dir / "adapter_model.bin")
    peft_model.peft_config["default"].save_pretrained(str(ref_dir))
    loaded = load_lora(fresh(), ref_dir)
    torch.testing.assert_close(_logits(loaded, batch), _logits(peft_model, batch), rtol=0, atol=0)


def _dense_delta(peft_model, module_name):
    layer = dict(lora_layers(peft_model))[f"base_model.model.{module_name}"]
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    if a.ndim == 4:  # conv: B is 1×1, A carries the kernel
        return torch.einsum("or,rihw->oihw", b[:, :, 0, 0], a) * layer.scaling["default"]
    return (b @ a) * layer.scaling["default"]


@pytest.mark.parametrize("coefficient", [0.5, 0.8])
def test_folding_adapters_equals_dense_base_plus_c_b_a(fresh, tmp_path, coefficient):
    modules = [
        "language_model.model.layers.0.self_attn.q_proj",
        "language_model.lm_head",
        "projector.fc1",
        "vision_backbone.fused_featurizer.blocks.0.attn.qkv",
        "vision_backbone.featurizer.patch_embed.proj",
    ]
    first, path1 = _adapter(fresh, tmp_path, seed=1, name="task0")
    second, path2 = _adapter(fresh, tmp_path, seed=2, name="task1")
    base = fresh().state_dict()
    merged = merge_adapters(fresh(), [path1, path2], coefficient)
    assert lora_layers(merged) == []
    state = merged.state_dict()
    for module in modules:
        expected = base[f"{module}.weight"] + coefficient * (_dense_delta(first, module) + _dense_delta(second, module))
        torch.testing.assert_close(state[f"{module}.weight"], expected, rtol=1e-5, atol=1e-6)


def test_lora_scale_zero_reproduces_the_base_model_exactly(fresh, policy, batch, tmp_path):
    _, path = _adapter(fresh, tmp_path, seed=4, name="adapter")
    adapted = load_lora(fresh(), path)
    assert (_logits(adapted, batch) - _logits(policy, batch)).abs().amax() > 1e-4
    assert scale_lora(adapted, 0.0) == TINY_TARGETS
    torch.testing.assert_close(_logits(adapted, batch), _logits(policy, batch), rtol=0, atol=0)


def test_lora_scale_equals_merging_with_the_same_coefficient(fresh, batch, tmp_path):
    _, path = _adapter(fresh, tmp_path, seed=5, name="adapter")
    scaled = setup_lora(fresh(), lora_path=path, lora_scale=0.3)
    merged = merge_adapters(fresh(), [path], 0.3)
    torch.testing.assert_close(_logits(scaled, batch), _logits(merged, batch), rtol=1e-4, atol=1e-4)


def test_weight_merge_setup_trains_only_a_fresh_adapter(fresh, batch, tmp_path):
    _, path = _adapter(fresh, tmp_path, seed=6, name="task0")
    model = setup_lora(fresh(), lora_paths=[path], merge_coefficient=0.5)
    assert len(lora_layers(model)) == TINY_TARGETS  # only the new adapter remains as LoRA layers
    reference = merge_adapters(fresh(), [path], 0.5)
    torch.testing.assert_close(_logits(model, batch), _logits(reference, batch), rtol=0, atol=0)
    with pytest.raises(LoraError, match="coefficient"):
        setup_lora(fresh(), lora_paths=[path], merge_coefficient=1.5)


def test_lora_errors(policy, tmp_path):
    with pytest.raises(LoraError, match="no LoRA layers"):
        scale_lora(policy, 0.5)
    with pytest.raises(LoraError, match="adapter_config.json"):
        check_adapter_dir(tmp_path)
