"""iRe-VLA Stage 2: supervised consolidation on expert demos ∪ D_RL — batch mixing and one optimizer step.

Loss [INF for OpenVLA-OFT's token head]: the cross-entropy of the target action tokens (expert tokens for
demos, the sampled tokens of successful episodes for D_RL) under the logits divided by ``temperature`` (default:
the rollout's sampling temperature) at the 56 action positions restricted to the 256 action ids, mean over B·56
tokens (:func:`vlacrl.algorithms.replay_losses.action_token_cross_entropy`). The paper uses an MSE on continuous
actions for its regression head. Why tempered: D_RL's tokens were drawn from softmax(z / T); fitting them under
softmax(z) makes softmax(z) as broad as the tempered policy, and the next rollout samples that at T again, so
every consolidation widens the policy (measured on the probe world: D_RL-only consolidation took a task from
0.81 to 0.00 at T = 1.6, docs/methods/ire_vla.md). Under softmax(z / T) the behaviour policy is a fixed point.

Mix: a batch of ``B`` rows holds ``round(B·demo_fraction)`` demo rows and the rest from D_RL (default 50/50);
when one source is empty the other fills the whole batch.
"""

from __future__ import annotations

from typing import Mapping

import torch

from vlacrl.algorithms.replay_losses import action_token_cross_entropy
from vlacrl.crl.crl_vla import samples as S
from vlacrl.models.inputs import MODEL_INPUT_KEYS
from vlacrl.models.lora import base_module


def split_counts(batch_size: int, demo_fraction: float, has_demos: bool, has_rl: bool) -> tuple[int, int]:
    """(demo rows, D_RL rows) of one Stage-2 batch; a missing source gives its rows to the other."""
    if not 0.0 <= demo_fraction <= 1.0:
        raise ValueError(f"demo_fraction must be in [0, 1], got {demo_fraction}")
    if not has_demos and not has_rl:
        return 0, 0
    if not has_rl:
        return batch_size, 0
    if not has_demos:
        return 0, batch_size
    demos = int(round(batch_size * demo_fraction))
    return demos, batch_size - demos


def mixed_batch(*parts: Mapping[str, torch.Tensor] | None) -> S.Samples:
    """Row-wise concatenation of the model inputs of ``parts`` (None/empty skipped).

    ``action_tokens`` become [B, C·D], ``attention_mask`` bool, ``pixel_values`` the first part's dtype.
    """
    parts = [p for p in parts if p is not None and S.num_samples({k: p[k] for k in MODEL_INPUT_KEYS}) > 0]
    if not parts:
        return {}
    dtype = parts[0]["pixel_values"].dtype
    rows = []
    for part in parts:
        rows.append({
            "input_ids": part["input_ids"].long().cpu(),
            "attention_mask": part["attention_mask"].bool().cpu(),
            "pixel_values": part["pixel_values"].to(dtype).cpu(),
            "action_tokens": part["action_tokens"].reshape(part["action_tokens"].shape[0], -1).long().cpu(),
        })  # fmt: skip
    return S.concat(rows)


def stage2_loss(
    raw_logits: torch.Tensor, tokens: torch.Tensor, token_begin: int, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token CE (float32, mean over B·56) and accuracy of ``tokens`` [B, 56] under ``raw_logits`` [B, 56, V]."""
    return action_token_cross_entropy(raw_logits, tokens, token_begin=token_begin, vocab_size=vocab_size)


def stage2_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Mapping[str, torch.Tensor],
    *,
    clip_grad: float | None = 1.0,
    temperature: float = 1.0,
) -> dict[str, float]:
    """One supervised step on ``batch`` (keys :data:`MODEL_INPUT_KEYS`): forward, token CE under the logits / T,
    backward, clip, step.

    Returns ``ire_vla/sft_loss``, ``ire_vla/token_accuracy``, ``ire_vla/grad_norm``, ``ire_vla/batch_size``.
    """
    policy = base_module(model)
    device = policy.language_model.lm_head.weight.device
    dtype = policy.projector.fc1.weight.dtype
    tokens = batch["action_tokens"].reshape(batch["action_tokens"].shape[0], -1).to(device)
    optimizer.zero_grad(set_to_none=True)
    pixels = batch["pixel_values"].to(device, dtype)
    out = policy(batch["input_ids"].to(device), batch["attention_mask"].to(device), pixels, tokens)
    logits = out.logits.float() / temperature
    loss, accuracy = stage2_loss(logits, tokens, int(policy.token_begin), int(policy.config.tokenizer_vocab_size))
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, float(clip_grad) if clip_grad else float("inf"))
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    optimizer.step()
    return {
        "ire_vla/sft_loss": float(loss.detach()),
        "ire_vla/token_accuracy": float(accuracy),
        "ire_vla/grad_norm": float(norm),
        "ire_vla/batch_size": float(tokens.shape[0]),
    }
