"""Vision → LLM projector, named ``fc1``/``fc2``/``fc3`` as in the checkpoints."""

from __future__ import annotations

import torch
from torch import nn


class PrismaticProjector(nn.Module):
    """Fused: Linear(D → 4D) → GELU → Linear(4D → H) → GELU → Linear(H → H); unfused: Linear(D → H) → GELU → Linear.

    ``D`` is the vision feature width (2176 for DINOv2 + SigLIP), ``H`` the LLM hidden size (4096).
    """

    def __init__(self, use_fused_vision_backbone: bool, vision_dim: int, llm_dim: int):
        super().__init__()
        self.use_fused_vision_backbone = use_fused_vision_backbone
        if use_fused_vision_backbone:
            self.fc1 = nn.Linear(vision_dim, 4 * vision_dim, bias=True)
            self.fc2 = nn.Linear(4 * vision_dim, llm_dim, bias=True)
            self.fc3 = nn.Linear(llm_dim, llm_dim, bias=True)
            self.act_fn2 = nn.GELU()
        else:
            self.fc1 = nn.Linear(vision_dim, llm_dim, bias=True)
            self.fc2 = nn.Linear(llm_dim, llm_dim, bias=True)
        self.act_fn1 = nn.GELU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [N, P, D] → patch embeddings [N, P, H]."""
        x = self.fc2(self.act_fn1(self.fc1(features)))
        if self.use_fused_vision_backbone:
            x = self.fc3(self.act_fn2(x))
        return x
