"""Fused DINOv2 + SigLIP vision backbone (timm), as in the OpenVLA HF checkpoints.

Each ViT runs on its own 3 channels of ``pixel_values`` [N, 6, 224, 224] and returns the patch tokens of
its **second-to-last** block (no final norm, prefix/register tokens dropped): [N, 256, 1024] for
DINOv2 ViT-L/14 and [N, 256, 1152] for SigLIP So400m/14; they are concatenated on the channel axis
→ [N, 256, 2176]. The last block, the final norm and SigLIP's attention-pool head exist (so the stored
tensors load) but never run. timm's LayerScale ``gamma`` is stored as ``scale_factor`` in the
checkpoints (transformers renames parameters called ``gamma``), so the modules are swapped for
:class:`LayerScale` with that parameter name.
"""

from __future__ import annotations

import timm
import torch
from timm.models.vision_transformer import LayerScale as TimmLayerScale
from torch import nn

from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig


class LayerScale(nn.Module):
    """Per-channel scale ``x * scale_factor`` (timm LayerScale with the checkpoint's parameter name)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale_factor = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


def _rename_layer_scales(model: nn.Module) -> int:
    """Replace every timm LayerScale in ``model`` by :class:`LayerScale`, keeping its values; returns the count."""
    targets = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, TimmLayerScale)]
    for name, old in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new = LayerScale(old.gamma.shape[0]).to(device=old.gamma.device, dtype=old.gamma.dtype)
        with torch.no_grad():
            new.scale_factor.copy_(old.gamma)
        setattr(parent, child, new)
    return len(targets)


def second_to_last_features(vit: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """images [N, 3, H, W] (normalised) → patch tokens [N, P, D] after block ``depth - 2`` (no norm, no prefix)."""
    index = len(vit.blocks) - 2
    return vit.get_intermediate_layers(images, n=[index], norm=False)[0]


def create_vit(model_id: str, image_size: int, act_layer: str | None, extra: dict) -> nn.Module:
    """Randomly initialised timm ViT without classifier, LayerScales renamed to ``scale_factor``."""
    kwargs = {"pretrained": False, "num_classes": 0, "img_size": image_size, **extra}
    if act_layer is not None:
        kwargs["act_layer"] = act_layer
    vit = timm.create_model(model_id, **kwargs)
    _rename_layer_scales(vit)
    return vit


class FusedVisionBackbone(nn.Module):
    """DINOv2 (``featurizer``) + SigLIP (``fused_featurizer``) patch features, channel-concatenated.

    State-dict keys are those of the checkpoints: ``featurizer.<timm keys>`` and ``fused_featurizer.<timm keys>``
    (the timm ViTs are registered directly under these names).
    """

    def __init__(self, config: OpenVLAOFTConfig):
        super().__init__()
        self.use_fused_vision_backbone = config.use_fused_vision_backbone
        n = 2 if self.use_fused_vision_backbone else 1
        if len(config.timm_model_ids) < n:
            raise ValueError(f"use_fused_vision_backbone needs {n} timm_model_ids, got {config.timm_model_ids}")
        acts = list(config.timm_override_act_layers) + [None] * n
        self.featurizer = create_vit(config.timm_model_ids[0], config.image_sizes[0], acts[0], config.timm_kwargs(0))
        self.fused_featurizer = (
            create_vit(config.timm_model_ids[1], config.image_sizes[1], acts[1], config.timm_kwargs(1))
            if self.use_fused_vision_backbone
            else None
        )

    @property
    def embed_dim(self) -> int:
        """Channels of the fused feature map (2176 for DINOv2-L + SigLIP-So400m)."""
        dims = [self.featurizer.embed_dim]
        if self.fused_featurizer is not None:
            dims.append(self.fused_featurizer.embed_dim)
        return int(sum(dims))

    @property
    def num_patches(self) -> int:
        """Patch tokens per image (256 at 224 px, patch 14)."""
        return int(self.featurizer.patch_embed.num_patches)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, 6, H, W] (or [N, 3, H, W] unfused) → features [N, 256, embed_dim]."""
        if self.fused_featurizer is None:
            return second_to_last_features(self.featurizer, pixel_values)
        dino_pixels, siglip_pixels = torch.split(pixel_values, [3, 3], dim=1)
        dino = second_to_last_features(self.featurizer, dino_pixels)
        siglip = second_to_last_features(self.fused_featurizer, siglip_pixels)
        return torch.cat([dino, siglip], dim=2)
