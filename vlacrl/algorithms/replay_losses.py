"""Replay losses of ER and DER (docs/methods/er.md) — pure torch.

ER (behaviour cloning): cross-entropy of the expert action tokens under the replay half's **untempered** raw
logits [B, 56, V] masked to the 256 action ids ``[token_begin, vocab_size)`` (ids below and the padding ids
≥ ``vocab_size`` get −∞), mean over all B·56 tokens, times ``bc_coeff``.

DER: ``bc_coeff · mean((z_cur − z_ref)²)`` over [B, 56, 256], with z_cur the current model's untempered
action-id logits on the replay half and z_ref the (detached) reference logits — cached base-model logits or
the adapter-disabled model's.

Both upcast to float32 before the reduction (the reference reduces in the model dtype, bf16 on GPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_TOKEN_BEGIN = 31744
DEFAULT_VOCAB_SIZE = 32000


def action_token_cross_entropy(
    raw_logits: torch.Tensor,
    expert_tokens: torch.Tensor,
    *,
    token_begin: int = DEFAULT_TOKEN_BEGIN,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CE and token accuracy of ``expert_tokens`` [B, N] (ids in ``[token_begin, vocab_size)``) under
    ``raw_logits`` [B, N, V] masked to the action ids.

    Computed on the action-id slice (−∞ entries contribute nothing to the softmax, so this equals the CE of
    the fully masked logits) in float32. Returns (loss scalar, accuracy scalar, detached).
    """
    if raw_logits.shape[:2] != expert_tokens.shape:
        raise ValueError(f"logits {tuple(raw_logits.shape)} do not match tokens {tuple(expert_tokens.shape)}")
    tokens = expert_tokens.to(raw_logits.device).long()
    if bool(((tokens < token_begin) | (tokens >= vocab_size)).any()):
        raise ValueError(f"expert tokens must lie in [{token_begin}, {vocab_size})")
    action_logits = raw_logits[..., token_begin:vocab_size].float()
    targets = tokens - token_begin
    loss = F.cross_entropy(action_logits.reshape(-1, action_logits.shape[-1]), targets.reshape(-1))
    accuracy = (action_logits.detach().argmax(dim=-1) == targets).float().mean()
    return loss, accuracy


def er_loss(
    raw_logits: torch.Tensor,
    expert_tokens: torch.Tensor,
    bc_coeff: float,
    *,
    token_begin: int = DEFAULT_TOKEN_BEGIN,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> tuple[torch.Tensor, dict[str, float]]:
    """ER term ``bc_coeff · CE`` and its metrics (``bc/unweighted_loss``, ``bc/coeff``, ``bc/token_accuracy``).

    raw_logits [B, 56, V] (untempered, unmasked), expert_tokens [B, 56] int.
    """
    loss, accuracy = action_token_cross_entropy(
        raw_logits, expert_tokens, token_begin=token_begin, vocab_size=vocab_size
    )
    weighted = float(bc_coeff) * loss
    metrics = {
        "bc/unweighted_loss": float(loss.detach()),
        "bc/coeff": float(bc_coeff),
        "bc/token_accuracy": float(accuracy),
    }
    return weighted, metrics


def der_loss(
    current_logits: torch.Tensor, reference_logits: torch.Tensor, bc_coeff: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """DER term ``bc_coeff · mean((z_cur − z_ref)²)`` over [B, 56, 256] and the reference's metrics.

    Metrics: ``bc/unweighted_loss`` (= ``bc/logits_mse``), ``bc/coeff``, ``bc/mean_abs_error``,
    ``bc/max_abs_error``. ``reference_logits`` is detached (no gradient reaches the reference).
    """
    if current_logits.shape != reference_logits.shape:
        raise ValueError(
            f"current logits {tuple(current_logits.shape)} and reference {tuple(reference_logits.shape)} differ"
        )
    current = current_logits.float()
    reference = reference_logits.detach().to(current.device, torch.float32)
    mse = F.mse_loss(current, reference, reduction="mean")
    diff = (current.detach() - reference).abs()
    metrics = {
        "bc/unweighted_loss": float(mse.detach()),
        "bc/logits_mse": float(mse.detach()),
        "bc/coeff": float(bc_coeff),
        "bc/mean_abs_error": float(diff.mean()),
        "bc/max_abs_error": float(diff.max()),
    }
    return float(bc_coeff) * mse, metrics
