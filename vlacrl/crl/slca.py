"""SLCA's "slow learner" (docs/methods/slca.md): per-component LoRA learning rates as AdamW parameter groups.

LoRA parameters (names containing ``lora_``) are split into three groups, tested in this order:

* vision: ``vision_backbone`` or ``.projector.`` in the name → ``crl.vision_lora_lr``
* LLM: ``language_model`` and not ``lm_head`` → ``crl.llm_lora_lr``
* head: ``lm_head`` → ``crl.lm_head_lora_lr``

each defaulting to ``actor.optim.lr``; betas from ``actor.optim`` (no eps / weight decay, as the reference
builds every AdamW group). The value head (PPO only) keeps ``actor.optim.value_lr``; any other trainable
parameter gets ``actor.optim.lr``. Tasks are chained exactly like Seq. FT.

Key spellings: besides ``crl.<x>_lora_lr`` the reference's locations ``actor.optim.<x>_lora_lr`` are read,
and ``llm_head_lora_lr`` (the launcher's spelling) is an alias of ``lm_head_lora_lr``; giving two different
values for one group is an error. Unlike the release no ``use_component_lrs`` switch is needed: choosing
``crl.method=slca`` activates the groups (and the classifier-alignment half of SLCA is not part of it).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch

from vlacrl.crl.common import MethodConfigError, nested_get
from vlacrl.crl.registry import register
from vlacrl.crl.seq_ft import SeqFT

logger = logging.getLogger(__name__)

COMPONENTS = ("vision_lora", "llm_lora", "lm_head_lora")
# group -> accepted key names (first is canonical), read under crl.* and then actor.optim.*
LR_KEYS = {
    "vision_lora": ("vision_lora_lr",),
    "llm_lora": ("llm_lora_lr",),
    "lm_head_lora": ("lm_head_lora_lr", "llm_head_lora_lr"),
}


def component_of(name: str) -> str | None:
    """The SLCA group of a parameter name: ``vision_lora``, ``llm_lora``, ``lm_head_lora``, or None (not LoRA).

    Raises :class:`MethodConfigError` for a LoRA parameter that fits no group (the reference raises too).
    """
    if "lora_" not in name:
        return None
    if "vision_backbone" in name or ".projector." in name:
        return "vision_lora"
    if "language_model" in name and "lm_head" not in name:
        return "llm_lora"
    if "lm_head" in name:
        return "lm_head_lora"
    raise MethodConfigError(f"SLCA: LoRA parameter {name!r} is neither vision, LLM nor lm_head")


def component_lrs(cfg: Mapping[str, Any]) -> dict[str, float]:
    """Learning rate of each group from ``crl.*`` / ``actor.optim.*`` (aliases included), else ``actor.optim.lr``."""
    default = float(nested_get(cfg, "actor.optim.lr"))
    lrs = {}
    for group, keys in LR_KEYS.items():
        found = {
            f"{section}.{key}": float(value)
            for section in ("crl", "actor.optim")
            for key in keys
            if (value := nested_get(cfg, f"{section}.{key}")) is not None
        }
        if len(set(found.values())) > 1:
            raise MethodConfigError(f"SLCA: conflicting learning rates for the {group} group: {found}")
        lrs[group] = next(iter(found.values())) if found else default
    return lrs


@register("slca")
class SLCA(SeqFT):
    """Seq. FT with separate learning rates for vision, LLM and lm_head LoRA parameters."""

    supports_full_finetuning = False  # its learning-rate groups are groups of LoRA tensors

    def param_groups(self, model: torch.nn.Module, optim_cfg: Mapping[str, Any]) -> list[dict] | None:
        """AdamW groups ``{"params", "lr", "betas", "name"}``: the three LoRA components, then the value head
        (``value_lr``) and any other trainable parameters (``lr``); empty groups are left out."""
        cfg = {**self.cfg, "actor": {**(self.cfg.get("actor") or {}), "optim": dict(optim_cfg)}}
        lrs = component_lrs(cfg)
        lrs.update(value_head=float(optim_cfg["value_lr"]), other=float(optim_cfg["lr"]))
        members: dict[str, list[torch.nn.Parameter]] = {key: [] for key in lrs}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            group = component_of(name) or ("value_head" if "value_head" in name else "other")
            members[group].append(param)
        betas = (float(optim_cfg["adam_beta1"]), float(optim_cfg["adam_beta2"]))
        groups = [
            {"params": params, "lr": lrs[key], "betas": betas, "name": key} for key, params in members.items() if params
        ]
        for group in groups:
            logger.info("SLCA group %s: %d tensors, lr %g", group["name"], len(group["params"]), group["lr"])
        return groups
