"""Discrete action tokens ↔ continuous actions (256 bins, BOUNDS_Q99 normalisation).

Token ids of the 256 bins are the last 256 ids of the tokenizer vocabulary: ``[vocab_size - n_bins,
vocab_size)`` = [31744, 32000). ``bins = linspace(-1, 1, n_bins)``, ``bin_centers`` = the 255 midpoints.
Decoding: ``k = clip(vocab_size - t - 1, 0, 254)``, ``a_norm = bin_centers[k]``; un-normalising with the
dataset's 1st/99th percentiles: ``a = 0.5 (a_norm + 1)(q99 - q01 + 1e-8) + q01`` on dims where ``mask`` is
True (the gripper keeps ``a_norm``). Encoding inverts this with the nearest bin center. All maths in
float64, as the reference does it in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

EPS = 1e-8


def resolve_unnorm_key(norm_stats: dict[str, Any], unnorm_key: str | None) -> str:
    """The stats key to use: ``unnorm_key``, or ``unnorm_key + '_no_noops'`` if only that exists.

    With ``unnorm_key=None`` the stats must hold exactly one dataset.
    """
    if unnorm_key is None:
        if len(norm_stats) != 1:
            raise KeyError(f"unnorm_key is required: norm_stats holds {sorted(norm_stats)}")
        return next(iter(norm_stats))
    if unnorm_key not in norm_stats and f"{unnorm_key}_no_noops" in norm_stats:
        return f"{unnorm_key}_no_noops"
    if unnorm_key not in norm_stats:
        raise KeyError(f"unnorm_key {unnorm_key!r} not in norm_stats (have {sorted(norm_stats)})")
    return unnorm_key


@dataclass
class ActionTokenizer:
    """Bins and statistics of one dataset; tensors are float64 on CPU.

    Attributes: ``vocab_size`` (32000), ``n_bins`` (256), ``q01``/``q99`` [D], ``mask`` [D] bool.
    """

    q01: torch.Tensor
    q99: torch.Tensor
    mask: torch.Tensor
    vocab_size: int = 32000
    n_bins: int = 256

    def __post_init__(self) -> None:
        self.bins = torch.linspace(-1.0, 1.0, self.n_bins, dtype=torch.float64)
        self.bin_centers = (self.bins[:-1] + self.bins[1:]) / 2.0

    @classmethod
    def from_norm_stats(
        cls, norm_stats: dict[str, Any], unnorm_key: str | None, vocab_size: int = 32000, n_bins: int = 256
    ) -> ActionTokenizer:
        """From ``norm_stats[key]['action']`` (q01, q99, optional mask; default all True)."""
        stats = norm_stats[resolve_unnorm_key(norm_stats, unnorm_key)]["action"]
        q01 = torch.tensor(stats["q01"], dtype=torch.float64)
        q99 = torch.tensor(stats["q99"], dtype=torch.float64)
        mask = torch.tensor(stats.get("mask", [True] * len(q01)), dtype=torch.bool)
        return cls(q01=q01, q99=q99, mask=mask, vocab_size=vocab_size, n_bins=n_bins)

    @property
    def token_begin(self) -> int:
        """First valid action token id (31744)."""
        return self.vocab_size - self.n_bins

    def tokens_to_normalized(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids [..., D] (int) → normalised actions in [-1, 1], float64, same shape."""
        k = (self.vocab_size - tokens.long().cpu() - 1).clamp(0, self.bin_centers.shape[0] - 1)
        return self.bin_centers[k]

    def unnormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        """[..., D] in [-1, 1] → env-scale actions (BOUNDS_Q99 on masked dims), float64."""
        normalized = normalized.to(torch.float64).cpu()
        scaled = 0.5 * (normalized + 1.0) * (self.q99 - self.q01 + EPS) + self.q01
        return torch.where(self.mask, scaled, normalized)

    def normalize(self, actions: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`unnormalize`: ``2 (a - q01) / (q99 - q01 + 1e-8) - 1`` on masked dims."""
        actions = torch.as_tensor(actions).to(torch.float64).cpu()
        scaled = 2.0 * (actions - self.q01) / (self.q99 - self.q01 + EPS) - 1.0
        return torch.where(self.mask, scaled, actions)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids [..., D] → continuous actions [..., D] (float64)."""
        return self.unnormalize(self.tokens_to_normalized(tokens))

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """continuous actions [B, C, D] → token ids [B, C·D] (int64) of the nearest bin centers (BC targets)."""
        actions = torch.as_tensor(actions)
        normalized = self.normalize(actions)
        distance = (normalized.unsqueeze(-1) - self.bin_centers).abs()
        k = distance.argmin(dim=-1)
        tokens = (self.vocab_size - 1 - k).clamp(self.token_begin, self.vocab_size - 1)
        return tokens.reshape(actions.shape[0], -1)
