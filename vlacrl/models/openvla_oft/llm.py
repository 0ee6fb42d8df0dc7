"""The Llama backbone with bidirectional attention over the whole multimodal sequence.

The reference's transformers fork patches Llama's SDPA attention to be non-causal: every query attends to
every non-pad key. Here the same is done with stock transformers: ``text_config.is_causal = False`` makes
the mask builder return a bidirectional padding mask, and every attention module gets ``is_causal =
False`` (read by the SDPA and flash-attention kernels). SDPA is the default; flash-attention 2 is used
only when the ``flash_attn`` package is installed and the model runs on CUDA.
"""

from __future__ import annotations

import copy
import importlib.util
import logging

import torch
from transformers import LlamaConfig, LlamaForCausalLM

logger = logging.getLogger(__name__)

ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


def choose_attn_implementation(requested: str | None, device: torch.device | str) -> str:
    """``requested`` if given, else flash-attention 2 on CUDA when ``flash_attn`` is installed, else SDPA."""
    if requested is not None:
        if requested not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {requested!r}")
        return requested
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def build_language_model(
    text_config: LlamaConfig, attn_implementation: str = "sdpa", causal: bool = False
) -> LlamaForCausalLM:
    """A randomly initialised ``LlamaForCausalLM`` (keys ``model.*`` and ``lm_head.weight``).

    ``causal=False`` (the policy) gives full bidirectional attention with padded keys masked out;
    ``causal=True`` exists only so tests can show the difference.
    """
    config = copy.deepcopy(text_config)
    config.is_causal = causal
    config.use_cache = False
    config._attn_implementation = attn_implementation
    model = LlamaForCausalLM(config)
    set_causal(model, causal)
    return model


def set_causal(model: torch.nn.Module, causal: bool) -> None:
    """Switch every attention module of a Llama model (and its config) between causal and bidirectional."""
    for module in model.modules():
        if hasattr(module, "is_causal") and hasattr(module, "q_proj"):
            module.is_causal = causal
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "num_hidden_layers"):
            config.is_causal = causal
