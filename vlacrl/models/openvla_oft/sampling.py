"""Action-token distributions: vocabulary mask, temperature, top-k, sampling, log-probs and entropy.

Rows of ``logits`` are the 56 action positions; the last axis is the full (padded) vocabulary (32064).
Only ids in ``[token_begin, vocab_size)`` = [31744, 32000) are allowed; everything else has probability 0
(the reference sets those logits to -inf). Sampling, log-probs and entropy are computed on the 256-id slice
of allowed ids, which gives the same distribution as the -inf mask over the whole vocabulary at 1/125 of the
cost. The same tempered distribution serves rollout sampling (old log-probs) and training (new log-probs,
entropy), so the importance ratio compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ENTROPY_EPS = 1e-10


def mask_to_action_ids(logits: torch.Tensor, token_begin: int, vocab_size: int) -> torch.Tensor:
    """Copy of ``logits`` [..., V] with every id outside ``[token_begin, vocab_size)`` set to -inf."""
    masked = logits.clone()
    masked[..., :token_begin] = float("-inf")
    masked[..., vocab_size:] = float("-inf")
    return masked


def apply_top_k(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Keep the ``top_k`` largest logits per row (ties at the threshold kept); ``top_k <= 0`` or None: no-op."""
    if top_k is None or top_k <= 0:
        return logits
    top_k = min(int(top_k), logits.shape[-1])
    threshold = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < threshold, float("-inf"))


def action_logits(
    raw_logits: torch.Tensor, token_begin: int, vocab_size: int, temperature: float = 1.0, top_k: int | None = None
) -> torch.Tensor:
    """The allowed ids' logits [..., vocab_size - token_begin] divided by ``temperature``, top-k filtered (-inf).

    Index j of the last axis is token id ``token_begin + j``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return apply_top_k(raw_logits[..., token_begin:vocab_size] / temperature, top_k)


def processed_logits(
    raw_logits: torch.Tensor, token_begin: int, vocab_size: int, temperature: float = 1.0, top_k: int | None = None
) -> torch.Tensor:
    """Masked → divided by ``temperature`` → top-k filtered logits [..., V] (-inf outside the support)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    masked = mask_to_action_ids(raw_logits, token_begin, vocab_size) / temperature
    return apply_top_k(masked, top_k)


@dataclass
class SampledActions:
    """``tokens`` [B, 56] int64 token ids; ``logprobs`` [B, 56] under the processed distribution;
    ``logits`` [B, 56, 256] the processed (tempered, top-k) logits of the allowed ids (:func:`action_logits`)."""

    tokens: torch.Tensor
    logprobs: torch.Tensor
    logits: torch.Tensor


def sample_tokens(
    raw_logits: torch.Tensor,
    token_begin: int,
    vocab_size: int,
    *,
    temperature: float = 1.6,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> SampledActions:
    """Draw one token per row independently (all 56 at once), or take the argmax when ``greedy``."""
    logits = action_logits(raw_logits, token_begin, vocab_size, temperature, top_k)
    logprob_table = F.log_softmax(logits, dim=-1)
    if greedy:
        index = logprob_table.argmax(dim=-1)
    else:
        probs = logprob_table.exp().reshape(-1, logits.shape[-1])
        index = torch.multinomial(probs.float(), 1, replacement=True, generator=generator)
        index = index.reshape(logits.shape[:-1])
    logprobs = logprob_table.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return SampledActions(tokens=index + token_begin, logprobs=logprobs, logits=logits)


def token_logprobs_and_entropy(
    raw_logits: torch.Tensor,
    tokens: torch.Tensor,
    token_begin: int,
    vocab_size: int,
    *,
    temperature: float = 1.6,
    top_k: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-side log p(token) [B, 56] and entropy -Σ p log(p + 1e-10) [B, 56] of the processed distribution.

    ``tokens`` must be allowed ids (the rollout samples only those); others raise an index error.
    """
    logits = action_logits(raw_logits, token_begin, vocab_size, temperature, top_k)
    logprob_table = F.log_softmax(logits, dim=-1)
    index = tokens.long() - token_begin
    logprobs = logprob_table.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    probs = F.softmax(logits, dim=-1)
    entropy = -(probs * torch.log(probs + ENTROPY_EPS)).sum(dim=-1)
    return logprobs, entropy
