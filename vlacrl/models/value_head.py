"""The critic head (PPO only; GRPO builds it but never trains or saves it)."""

from __future__ import annotations

import torch
from torch import nn


class ValueHead(nn.Module):
    """MLP hidden → 512 (GELU) → 128 (GELU) → out_dim (no bias in the last layer).

    Init: Kaiming-normal (fan_out, ReLU gain) with zero bias for the first two layers, Normal(0, 0.02) for the
    last. ``out_dim`` is 1 for chunk-level values and ``num_action_chunks`` (8) for step-level values.
    """

    def __init__(self, hidden_size: int, out_dim: int = 1):
        super().__init__()
        self.head_l1 = nn.Linear(hidden_size, 512)
        self.head_act1 = nn.GELU()
        self.head_l2 = nn.Linear(512, 128)
        self.head_act2 = nn.GELU()
        self.head_l3 = nn.Linear(128, out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.head_l1, self.head_l2):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.head_l3.weight, mean=0.0, std=0.02)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, hidden_size] → values [B, out_dim]."""
        x = self.head_act1(self.head_l1(hidden))
        x = self.head_act2(self.head_l2(x))
        return self.head_l3(x)


def value_head_out_dim(value_type: str, num_action_chunks: int) -> int:
    """1 for ``chunk_level`` values, else one value per chunk step (``step_level`` → ``num_action_chunks``)."""
    return 1 if value_type == "chunk_level" else int(num_action_chunks)
