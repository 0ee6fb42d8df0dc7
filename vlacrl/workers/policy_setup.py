"""Build the policy a worker runs from the resolved config (shared by rollout and actor workers).

The rollout and the actor build the *same* PEFT model (same adapter names and shapes), so the actor's
trainable weights load into the rollout's model key for key.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch

from vlacrl.models.lora import setup_lora
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, load_policy

logger = logging.getLogger(__name__)


def worker_device(use_gpu: bool) -> torch.device:
    return torch.device("cuda", 0) if use_gpu else torch.device("cpu")


def model_dtype(model_cfg: Mapping[str, Any], use_gpu: bool) -> torch.dtype:
    """bf16 on GPU as the reference; float32 on CPU (bf16 matmuls are slow and imprecise there)."""
    return torch.bfloat16 if use_gpu and model_cfg.get("precision", "bf16") == "bf16" else torch.float32


def build_policy(cfg: Mapping[str, Any], model_dir: str, use_gpu: bool):
    """Load the HF-format checkpoint, attach the value head when needed, set up LoRA as configured.

    Returns the model (a ``PeftModel`` when ``actor.model.is_lora``) on the worker's device.
    """
    model_cfg = cfg["actor"]["model"]
    needs_values = bool(cfg["algorithm"].get("require_values", False))
    policy = load_policy(
        model_dir,
        dtype=model_dtype(model_cfg, use_gpu),
        device=worker_device(use_gpu),
        action_dim=int(model_cfg["action_dim"]),
        num_action_chunks=int(model_cfg["num_action_chunks"]),
        unnorm_key=model_cfg.get("unnorm_key"),
        vh_mode=model_cfg.get("vh_mode") if needs_values else None,
        value_type=str(model_cfg.get("value_type", "step_level")),
        attn_implementation=model_cfg.get("attn_implementation"),
    )
    if not model_cfg.get("is_lora", True):
        for param in policy.parameters():
            param.requires_grad = True
        return policy
    return setup_lora(
        policy,
        rank=int(model_cfg.get("lora_rank", 32)),
        lora_path=model_cfg.get("lora_path"),
        lora_paths=list(model_cfg.get("lora_paths") or []),
        merge_coefficient=float(model_cfg.get("previous_lora_merge_coefficient", 1.0)),
        lora_scale=float(model_cfg.get("lora_scale", 1.0)),
    )


def build_processor(cfg: Mapping[str, Any], model_dir: str) -> OpenVLAOFTProcessor:
    return OpenVLAOFTProcessor.from_model_dir(model_dir, max_length=int(cfg["runner"]["max_prompt_length"]))
