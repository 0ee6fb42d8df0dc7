"""Write a tiny, randomly initialised OpenVLA-OFT directory in exactly the released HF format.

Files: ``config.json`` (7B layout + tiny ``text_config`` sizes + ``timm_model_kwargs``),
``dataset_statistics.json`` (synthetic LIBERO statistics), ``preprocessor_config.json``, the tokenizer files
(vocab 32000 + ``<PAD>`` = 32000), ``generation_config.json`` and the weights as several safetensors shards
with ``model.safetensors.index.json``. Same seed → same weights.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vlacrl.models.openvla_oft.checkpoint import save_sharded
from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig
from vlacrl.models.openvla_oft.policy import OpenVLAOFTPolicy
from vlacrl.models.openvla_oft.presets import preprocessor_config, synthetic_dataset_statistics, tiny_config
from vlacrl.models.openvla_oft.tiny_tokenizer import write_tiny_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_SHARD_BYTES = 4 * 2**20


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def init_tiny_weights(policy: OpenVLAOFTPolicy, seed: int) -> None:
    """Re-draw every weight so that the random model produces varied, non-degenerate action logits.

    timm/transformers inits leave LayerScales at 1e-5 and Llama weights at std 0.02, which makes a tiny
    network nearly input-independent; here LayerScales are 1, matrices use std 1/sqrt(fan_in) and token
    embeddings std 1.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if name.endswith("scale_factor") or ("norm" in name and name.endswith("weight")):
                param.fill_(1.0)
            elif name.endswith("embed_tokens.weight"):
                param.copy_(torch.randn(param.shape, generator=generator))
            elif param.ndim >= 2:
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=generator) / fan_in**0.5)
            else:
                param.copy_(0.02 * torch.randn(param.shape, generator=generator))


def write_tiny_checkpoint(
    out_dir: str | Path,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Create ``out_dir`` (parents too) holding a complete tiny model directory; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = synthetic_dataset_statistics()
    config_dict = tiny_config()
    config_dict["torch_dtype"] = config_dict["text_config"]["torch_dtype"] = str(dtype).removeprefix("torch.")
    config = OpenVLAOFTConfig.from_dict(config_dict, out)
    torch.manual_seed(seed)
    policy = OpenVLAOFTPolicy(config)
    init_tiny_weights(policy, seed)
    state = {k: v.to(dtype) for k, v in policy.checkpoint_state_dict().items()}
    shards = save_sharded(state, out, max_shard_bytes)
    _write_json(out / "config.json", config_dict)
    _write_json(out / "dataset_statistics.json", stats)
    _write_json(out / "preprocessor_config.json", preprocessor_config())
    _write_json(out / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 32000})
    write_tiny_tokenizer(out)
    logger.info("wrote tiny OpenVLA-OFT checkpoint to %s (%d shards, seed %d)", out, len(shards), seed)
    return out
