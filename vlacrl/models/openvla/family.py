"""OpenVLA (autoregressive) as a :class:`~vlacrl.models.families.PolicyFamily` (``model_name: openvla``).

Everything but the policy class is OpenVLA-OFT's: the released OpenVLA checkpoints (``openvla/openvla-7b``,
``openvla/openvla-7b-finetuned-libero-*``) have the HF layout and tensor names of the OFT checkpoints vlacrl
loads, the prompt and the action tokenizer are the same, and LoRA, the value head, saving, chaining and the path
checks work unchanged. The tiny checkpoint is the tiny OpenVLA-OFT directory (the same files and keys).
"""

from __future__ import annotations

from typing import Any, Mapping

from vlacrl.models.errors import ModelPathError
from vlacrl.models.families import config_value
from vlacrl.models.openvla_oft.family import OpenVLAOFTFamily


class OpenVLAFamily(OpenVLAOFTFamily):
    name = "openvla"
    label = "OpenVLA"
    action_chunks = 1  # one action (7 tokens) per env step

    def policy_class(self) -> type:
        from vlacrl.models.openvla.policy import OpenVLAPolicy

        return OpenVLAPolicy

    def check_paths(self, cfg: Mapping[str, Any], pending: str | None) -> None:
        """OpenVLA decodes one action per env step; then the OpenVLA-OFT checks of every path."""
        chunks = config_value(cfg, "actor.model.num_action_chunks")
        if chunks is not None and int(chunks) != 1:
            raise ModelPathError(
                "actor.model.num_action_chunks", f"OpenVLA decodes one action per env step: set it to 1, got {chunks}"
            )
        super().check_paths(cfg, pending)
