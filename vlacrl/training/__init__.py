"""Supervised training outside the RL loop: the Simple CNN baseline's pre-training (docs/methods/simple_cnn.md).

See :mod:`vlacrl.training.simple_cnn_sft` and docs/methods/simple_cnn.md.
"""

from __future__ import annotations

from vlacrl.training.simple_cnn_sft import (
    SFTConfig,
    SFTResult,
    action_bin_targets,
    compute_action_statistics,
    train_simple_cnn,
)

__all__ = ["SFTConfig", "SFTResult", "action_bin_targets", "compute_action_statistics", "train_simple_cnn"]
