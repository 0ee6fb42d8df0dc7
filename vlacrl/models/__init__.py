"""Policies: OpenVLA-OFT (:mod:`vlacrl.models.openvla_oft`), the Simple CNN baseline, the value head and LoRA."""

from vlacrl.models.errors import CheckpointKeyError, LoraError, ModelDirError

__all__ = ["CheckpointKeyError", "LoraError", "ModelDirError"]
