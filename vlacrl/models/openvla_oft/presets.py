"""Reference configuration dicts: the released 7B ``config.json`` layout, the tiny variant, preprocessing.

``OPENVLA_7B_CONFIG`` mirrors the fields of the OpenVLA(-OFT) HF checkpoints' ``config.json`` (without
``norm_stats``); the LLM is Llama-2-7B from Llama defaults plus the three ``text_config`` keys stored
there. The tiny config is the same dict with small ``text_config`` sizes and ``timm_model_kwargs``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

DINOV2_ID = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP_ID = "vit_so400m_patch14_siglip_224"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
LIBERO_SUITE_KEYS = (
    "libero_spatial_no_noops",
    "libero_object_no_noops",
    "libero_goal_no_noops",
    "libero_10_no_noops",
)

OPENVLA_7B_CONFIG: dict[str, Any] = {
    "arch_specifier": "no-align+fused-gelu-mlp",
    "architectures": ["OpenVLAForActionPrediction"],
    "hf_llm_id": "meta-llama/Llama-2-7b-hf",
    "image_resize_strategy": "resize-naive",
    "image_sizes": [224, 224],
    "llm_backbone_id": "llama2-7b-pure",
    "llm_max_length": 2048,
    "model_type": "openvla",
    "n_action_bins": 256,
    "output_projector_states": False,
    "pad_to_multiple_of": 64,
    "pad_token_id": 32000,
    "text_config": {"model_type": "llama", "pad_token_id": 32000, "torch_dtype": "bfloat16", "vocab_size": 32064},
    "timm_model_ids": [DINOV2_ID, SIGLIP_ID],
    "timm_override_act_layers": [None, None],
    "torch_dtype": "bfloat16",
    "use_fused_vision_backbone": True,
    "vision_backbone_id": "dinosiglip-vit-so-224px",
}

TINY_TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}
#: Different widths for the two ViTs so that a swapped order cannot go unnoticed (32 + 48 = 80 channels).
TINY_TIMM_MODEL_KWARGS: list[dict[str, Any]] = [
    {"depth": 3, "embed_dim": 32, "num_heads": 2},
    {"depth": 3, "embed_dim": 48, "num_heads": 2},
]


def openvla_7b_config() -> dict[str, Any]:
    """A fresh copy of the 7B ``config.json`` dict (no ``norm_stats``)."""
    return copy.deepcopy(OPENVLA_7B_CONFIG)


def tiny_config(norm_stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tiny ``config.json`` dict: 7B layout, tiny LLM sizes, tiny ViTs through ``timm_model_kwargs``."""
    config = openvla_7b_config()
    config["text_config"].update(TINY_TEXT_CONFIG)
    config["text_config"]["torch_dtype"] = "float32"
    config["torch_dtype"] = "float32"
    config["timm_model_kwargs"] = copy.deepcopy(TINY_TIMM_MODEL_KWARGS)
    config["norm_stats"] = copy.deepcopy(norm_stats or {})
    return config


#: The 7B's widths: Llama-2-7B, DINOv2 ViT-L/14 (24 blocks), SigLIP so400m/14 (27 blocks).
LLAMA2_7B_LAYERS, VIT_DEPTHS_7B = 32, (24, 27)


def proportioned_7b_config(llm_layers: int = 2, vit_depths: tuple[int, int] = (2, 2)) -> dict[str, Any]:
    """The 7B architecture at its real widths (hidden 4096, MLP 11008, 32 heads; ViT-L 1024 and so400m 1152
    channels) with fewer blocks, so a CPU can run it: each block costs what a 7B block costs, and with the LLM
    and both ViTs cut by similar factors (32 → 2, 24 → 2, 27 → 2) the share of vision in a forward stays near
    the 7B's (benchmarks/model_step.py ``--shape 7b-proportioned``)."""
    config = openvla_7b_config()
    config["text_config"].update(hidden_size=4096, intermediate_size=11008, num_attention_heads=32,
                                 num_key_value_heads=32, num_hidden_layers=int(llm_layers))  # fmt: skip
    config["timm_model_kwargs"] = [{"depth": int(vit_depths[0])}, {"depth": int(vit_depths[1])}]
    config["norm_stats"] = {}
    return config


def bf16_rounded(values: tuple[float, ...]) -> list[float]:
    """``values`` rounded to bfloat16 (what the released preprocessor_config.json stores)."""
    return torch.tensor(values, dtype=torch.float32).to(torch.bfloat16).float().tolist()


def preprocessor_config(image_size: int = 224) -> dict[str, Any]:
    """``preprocessor_config.json`` of the fused DINOv2 + SigLIP checkpoints (bicubic resize, no crop)."""
    resize = {"antialias": True, "interpolation": 3, "max_size": None, "size": [image_size, image_size]}
    norms = [(IMAGENET_MEAN, IMAGENET_STD), (SIGLIP_MEAN, SIGLIP_STD)]
    return {
        "image_processor_type": "PrismaticImageProcessor",
        "processor_class": "PrismaticProcessor",
        "image_resize_strategy": "resize-naive",
        "use_fused_vision_backbone": True,
        "input_sizes": [[3, image_size, image_size]] * 2,
        "interpolations": ["bicubic", "bicubic"],
        "means": [list(m) for m, _ in norms],
        "stds": [list(s) for _, s in norms],
        "tvf_crop_params": [{"output_size": [image_size, image_size]}] * 2,
        "tvf_do_letterbox": False,
        "tvf_letterbox_fill": None,
        "tvf_normalize_params": [{"inplace": False, "mean": bf16_rounded(m), "std": bf16_rounded(s)} for m, s in norms],
        "tvf_resize_params": [dict(resize), dict(resize)],
    }


def synthetic_dataset_statistics() -> dict[str, Any]:
    """Plausible (made-up) LIBERO action statistics for the four suites; gripper dim unmasked as in OpenVLA."""
    stats: dict[str, Any] = {}
    for i, key in enumerate(LIBERO_SUITE_KEYS):
        shift = 0.05 * i
        q01 = [-0.75 - shift, -0.70, -0.90, -0.10, -0.15, -0.20, 0.0]
        q99 = [0.90, 0.85 + shift, 0.95, 0.12, 0.16, 0.25, 1.0]
        action = {
            "mean": [round((a + b) / 2, 4) for a, b in zip(q01, q99)],
            "std": [round((b - a) / 4, 4) for a, b in zip(q01, q99)],
            "min": [a - 0.1 for a in q01[:6]] + [0.0],
            "max": [b + 0.1 for b in q99[:6]] + [1.0],
            "q01": q01,
            "q99": q99,
            "mask": [True] * 6 + [False],
        }
        proprio = {name: [0.0] * 8 for name in ("mean", "std", "min", "max", "q01", "q99")}
        stats[key] = {"action": action, "proprio": proprio, "num_transitions": 50000, "num_trajectories": 430}
    return stats
