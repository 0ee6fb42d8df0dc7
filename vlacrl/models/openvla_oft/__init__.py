"""OpenVLA-OFT (fused DINOv2 + SigLIP, projector, bidirectional Llama-2) as a parallel-decoding RL policy.

Entry points: :func:`load_policy` (HF-format directory → policy), :class:`OpenVLAOFTProcessor`
(instructions + images → inputs), :class:`ActionTokenizer` (tokens ↔ actions),
:func:`write_tiny_checkpoint` (tiny random directory for tests and the CPU quickstart).
"""

from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer, resolve_unnorm_key
from vlacrl.models.openvla_oft.checkpoint import load_policy, save_sharded, validate_model_dir
from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig
from vlacrl.models.openvla_oft.policy import ActionPrediction, OpenVLAOFTPolicy, PolicyOutput
from vlacrl.models.openvla_oft.processing import OpenVLAOFTProcessor, build_prompt
from vlacrl.models.openvla_oft.tiny import write_tiny_checkpoint

__all__ = [
    "ActionPrediction",
    "ActionTokenizer",
    "OpenVLAOFTConfig",
    "OpenVLAOFTPolicy",
    "OpenVLAOFTProcessor",
    "PolicyOutput",
    "build_prompt",
    "load_policy",
    "resolve_unnorm_key",
    "save_sharded",
    "validate_model_dir",
    "write_tiny_checkpoint",
]
