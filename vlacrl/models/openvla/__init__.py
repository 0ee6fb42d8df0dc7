"""OpenVLA (autoregressive): OpenVLA-OFT's network and checkpoints with causal attention and token-by-token
decoding of one action per step (:class:`OpenVLAPolicy`; the family: :mod:`vlacrl.models.openvla.family`)."""

from vlacrl.models.openvla.policy import OpenVLAPolicy

__all__ = ["OpenVLAPolicy"]
