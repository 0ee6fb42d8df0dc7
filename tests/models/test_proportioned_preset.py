"""The 7B-proportioned CPU shape of benchmarks/model_step.py: the 7B's widths with few blocks, built on ``meta``."""

import torch

from vlacrl.models.openvla_oft import OpenVLAOFTConfig, OpenVLAOFTPolicy
from vlacrl.models.openvla_oft.presets import openvla_7b_config, proportioned_7b_config


def blocks_and_widths(config: dict) -> tuple:
    with torch.device("meta"):
        policy = OpenVLAOFTPolicy(OpenVLAOFTConfig.from_dict({**config, "norm_stats": {}}))
    towers = [m for m in policy.modules() if type(m).__name__ == "VisionTransformer"]
    layers = policy.language_model.model.layers
    return (len(layers), layers[0].mlp.up_proj.weight.shape, [len(t.blocks) for t in towers],
            [t.embed_dim for t in towers])  # fmt: skip


def test_the_proportioned_shape_keeps_the_7b_widths_with_two_blocks_each():
    layers, mlp, depths, widths = blocks_and_widths(proportioned_7b_config())
    assert layers == 2 and tuple(mlp) == (11008, 4096) and depths == [2, 2] and widths == [1024, 1152]
    full = blocks_and_widths(openvla_7b_config())
    assert full[0] == 32 and full[1:2] == (mlp,) and full[2] == [24, 27] and full[3] == widths
