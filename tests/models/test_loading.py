"""Loading HF-format directories: key names and shapes, the 7B layout on ``meta``, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from vlacrl.models.errors import CheckpointKeyError, ModelDirError
from vlacrl.models.openvla_oft import OpenVLAOFTConfig, OpenVLAOFTPolicy, load_policy
from vlacrl.models.openvla_oft.checkpoint import compare_keys, stored_shapes, weight_map
from vlacrl.models.openvla_oft.presets import openvla_7b_config


@pytest.fixture(scope="module")
def full_policy():
    """The 7B architecture from the released config.json layout, on the meta device (no memory)."""
    with torch.device("meta"):
        return OpenVLAOFTPolicy(OpenVLAOFTConfig.from_dict(openvla_7b_config()))


def test_tiny_dir_has_the_released_file_layout(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {
        "config.json",
        "dataset_statistics.json",
        "preprocessor_config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "model.safetensors.index.json",
    } <= names
    assert "tokenizer.model" not in names
    shards = sorted(n for n in names if n.startswith("model-") and n.endswith(".safetensors"))
    assert len(shards) >= 2
    index = json.loads((tiny_dir / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["model_type"] == "openvla" and len(config["timm_model_kwargs"]) == 2
    assert json.loads((tiny_dir / "added_tokens.json").read_text()) == {"<PAD>": 32000}


def test_tiny_checkpoint_loads_with_zero_missing_or_unexpected_keys(tiny_dir, policy):
    path = tiny_dir
    stored = stored_shapes(path, weight_map(path))
    expected = {k: tuple(v.shape) for k, v in policy.checkpoint_state_dict().items()}
    report = compare_keys(expected, stored)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    # Unused stored tensors exist and load: the last ViT blocks, the final norms, SigLIP's attention pool.
    assert "vision_backbone.featurizer.blocks.2.attn.qkv.weight" in stored
    assert "vision_backbone.featurizer.norm.weight" in stored
    assert "vision_backbone.fused_featurizer.attn_pool.latent" in stored
    assert not any(t.is_meta for t in policy.state_dict().values())


def test_loaded_tensors_equal_the_stored_ones(tiny_dir, policy):
    from safetensors.torch import load_file

    mapping = weight_map(tiny_dir)
    shard = sorted(set(mapping.values()))[-1]
    stored = load_file(str(tiny_dir / shard))
    state = policy.state_dict()
    for key, tensor in stored.items():
        torch.testing.assert_close(state[key], tensor.float(), rtol=0, atol=0)


def test_config_merges_dataset_statistics_and_uses_llama_defaults(tiny_dir):
    config = OpenVLAOFTConfig.from_model_dir(tiny_dir)
    assert "libero_spatial_no_noops" in config.norm_stats
    assert config.tokenizer_vocab_size == 32000 and config.n_action_bins == 256
    assert config.text_config.hidden_size == 64 and config.text_config.rms_norm_eps == 1e-6
    full = OpenVLAOFTConfig.from_dict(openvla_7b_config())
    assert (full.text_config.num_hidden_layers, full.text_config.hidden_size) == (32, 4096)
    assert (full.text_config.intermediate_size, full.text_config.vocab_size) == (11008, 32064)


def test_full_7b_architecture_matches_tiny_key_names_with_full_shapes(full_policy, policy):
    full = {k: tuple(v.shape) for k, v in full_policy.checkpoint_state_dict().items()}
    tiny = policy.checkpoint_state_dict()

    def layout(keys):  # block/layer indices differ (depth), everything else must match
        import re

        return {re.sub(r"\.(blocks|layers)\.\d+\.", r".\1.N.", k) for k in keys}

    assert layout(full) == layout(tiny)
    assert sum(torch.Size(s).numel() for s in full.values()) == 7_541_237_184
    assert full["vision_backbone.featurizer.patch_embed.proj.weight"] == (1024, 3, 14, 14)
    assert full["vision_backbone.fused_featurizer.patch_embed.proj.weight"] == (1152, 3, 14, 14)
    assert full["vision_backbone.featurizer.blocks.23.ls1.scale_factor"] == (1024,)
    assert full["projector.fc1.weight"] == (8704, 2176)
    assert full["projector.fc3.weight"] == (4096, 4096)
    assert full["language_model.model.embed_tokens.weight"] == (32064, 4096)
    assert full["language_model.lm_head.weight"] == (32064, 4096)
    assert "language_model.model.layers.31.mlp.down_proj.weight" in full
    assert "language_model.model.layers.32.mlp.down_proj.weight" not in full
    assert not any("gamma" in k for k in full)


def test_missing_directory_names_the_expected_files(tmp_path):
    with pytest.raises(ModelDirError) as info:
        load_policy(tmp_path / "nope")
    message = str(info.value)
    for name in (
        "config.json",
        "dataset_statistics.json",
        "preprocessor_config.json",
        "model.safetensors.index.json",
        "model/README.md",
    ):
        assert name in message


@pytest.mark.parametrize("remove", ["config.json", "preprocessor_config.json", "tokenizer.json"])
def test_incomplete_directory_lists_what_is_missing(tiny_dir, tmp_path, remove):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    (broken / remove).unlink()
    with pytest.raises(ModelDirError, match="missing") as info:
        load_policy(broken)
    assert remove in str(info.value)


def test_malformed_files_raise_model_dir_errors(tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="config.json is not valid JSON"):
        load_policy(broken)
    config = json.loads((tiny_dir / "config.json").read_text())
    config["model_type"] = "llama"
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelDirError, match="model_type"):
        load_policy(broken)


def test_missing_shard_and_wrong_sizes_are_reported(tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    shard = sorted(broken.glob("model-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(ModelDirError, match=shard.name):
        load_policy(broken)
    shutil.copy(tiny_dir / shard.name, shard)
    config = json.loads((tiny_dir / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 3  # the checkpoint holds 2 layers
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointKeyError, match="missing"):
        load_policy(broken)
