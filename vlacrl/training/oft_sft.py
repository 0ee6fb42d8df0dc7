"""Supervised fine-tuning of an OpenVLA-OFT directory on demo files: the "SFT base" RL starts from.

The paper's runs start from OpenVLA-OFT fine-tuned on one demonstration per task
(``Openvla-oft-SFT-libero-spatial-traj1``). The CPU probe recipe does the same at tiny scale: the tiny random
model is fine-tuned on the probe expert's demos (full parameters, cross-entropy on the 56 action tokens, the
same loss as ER's behaviour cloning term; OpenVLA: on the 7 tokens of one action, teacher-forced) and written
back as a complete HF-format directory, so every loader, launcher and test treats it like a released checkpoint
(docs/probe.md).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from vlacrl.models.families import DEFAULT_FAMILY, get_family

logger = logging.getLogger(__name__)

#: files of a model directory that are not weights (copied unchanged)
INFO_FILE = "sft_info.json"


@dataclass(frozen=True)
class SFTConfig:
    """Hyper-parameters of :func:`supervised_finetune` (steps are optimizer steps of ``batch_size`` samples)."""

    steps: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    unnorm_key: str = "libero_spatial_no_noops"
    demos_per_task: int | None = None  # None: every demo in each file
    max_prompt_length: int = 128
    family: str = DEFAULT_FAMILY  # the policy family trained (actor.model.model_name): OpenVLA-OFT or OpenVLA


def supervised_finetune(
    model_dir: str | Path, demo_files: Sequence[str | Path], out_dir: str | Path, config: SFTConfig = SFTConfig()
) -> dict:
    """Fine-tune every parameter of ``model_dir`` on ``demo_files`` (replay layout) and write ``out_dir``.

    Returns the record also written to ``out_dir/sft_info.json``: config, number of samples, first/last loss
    and token accuracy, seconds.
    """
    from vlacrl.algorithms.replay_losses import action_token_cross_entropy
    from vlacrl.data import ReplayBatchIterator, ReplayCollator, ReplayDataset
    from vlacrl.models.openvla_oft import OpenVLAOFTProcessor
    from vlacrl.models.openvla_oft.checkpoint import copy_non_weight_files, load_policy, save_sharded

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    family = get_family(config.family)
    policy = load_policy(
        model_dir, dtype=torch.float32, unnorm_key=config.unnorm_key, num_action_chunks=family.action_chunks,
        policy_class=family.policy_class(),
    ).train()  # fmt: skip
    dataset = ReplayDataset(
        demo_files, demos_per_task=config.demos_per_task, num_action_chunks=policy.num_action_chunks
    )
    processor = OpenVLAOFTProcessor.from_model_dir(model_dir, max_length=config.max_prompt_length)
    batches = ReplayBatchIterator(
        dataset, ReplayCollator(processor, policy.action_tokenizer), config.batch_size, seed=config.seed, reshuffle=True
    )
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=0.0)
    begin, vocab = int(policy.token_begin), int(policy.config.tokenizer_vocab_size)
    history = []
    for step in range(config.steps):
        batch = next(batches)
        inputs = (batch["input_ids"], batch["attention_mask"], batch["pixel_values"])
        logits = policy(*inputs, batch["action_tokens"]).logits  # OpenVLA teacher-forces the expert tokens
        loss, accuracy = action_token_cross_entropy(logits, batch["action_tokens"], token_begin=begin, vocab_size=vocab)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append((float(loss.detach()), float(accuracy)))
        if step % 20 == 0 or step == config.steps - 1:
            logger.info("sft step %d/%d: loss %.3f, token accuracy %.2f", step + 1, config.steps, *history[-1])
    out = Path(out_dir)
    copy_non_weight_files(Path(model_dir), out)
    state = {k: v.detach().to(torch.float32) for k, v in policy.checkpoint_state_dict().items()}
    save_sharded(state, out)
    record = {
        "base_model": str(model_dir),
        "demo_files": [str(p) for p in demo_files],
        "config": asdict(config),
        "num_samples": len(dataset),
        "first": {"loss": history[0][0], "token_accuracy": history[0][1]},
        "last": {"loss": history[-1][0], "token_accuracy": history[-1][1]},
        "seconds": time.perf_counter() - start,
    }
    (out / INFO_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record
