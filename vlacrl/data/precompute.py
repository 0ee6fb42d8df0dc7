"""Building the logit cache: demonstration sources → base-model logits → the docs/methods/er.md layout.

Sources (:class:`SourceTask`, one per task): LIBERO demo files and files already in the replay layout
(:func:`iter_hdf5_tasks`), or the RLDS release (:func:`vlacrl.data.rlds.iter_rlds_tasks`).
:func:`compute_demo_logits` runs the policy (the SFT base; a fresh LoRA adapter has no effect) on every step of
a demo with the prompt built from the task's instruction and fills ``processed_action_logits``,
``predicted_actions`` (greedy) and ``action_tokens`` (expert tokens).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from vlacrl.algorithms.replay_losses import action_token_cross_entropy
from vlacrl.data.errors import ReplayDataError
from vlacrl.data.formats import Demo, expert_windows, task_description_from_filename
from vlacrl.data.libero_hdf5 import is_libero_demo_file, libero_instruction, list_demos, read_libero_demo
from vlacrl.data.logit_cache import cache_instruction, read_cache_demo
from vlacrl.models.inputs import PROMPT_INPUT_KEYS

logger = logging.getLogger(__name__)


@dataclass
class SourceTask:
    """One task's demonstrations in the replay layout: ``demos`` = [(group name, :class:`Demo`)]."""

    instruction: str
    demos: list[tuple[str, Demo]]
    source: str

    @property
    def num_steps(self) -> int:
        return sum(demo.num_steps for _, demo in self.demos)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given and the ``*.hdf5`` of directories, sorted per directory; one-line error if none."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix == ".hdf5"))
        elif path.is_file():
            files.append(path)
        else:
            raise ReplayDataError(f"input {path} does not exist (expected demo .hdf5 files or a folder of them)")
    if not files:
        raise ReplayDataError(f"no .hdf5 files in {[str(p) for p in inputs]}")
    return files


def _select(names: list[str], first_demo: int, demos_per_task: int | None) -> list[str]:
    return names[first_demo:] if demos_per_task is None else names[first_demo : first_demo + demos_per_task]


def iter_hdf5_tasks(
    files: Sequence[Path], *, demos_per_task: int | None = None, first_demo: int = 0, filter_noops: bool = True
) -> Iterator[SourceTask]:
    """One :class:`SourceTask` per file: LIBERO demo files are converted (gripper, 180° frames, no-ops
    dropped unless ``filter_noops=False``); replay-layout files are taken as they are."""
    for path in files:
        names = _select(list_demos(path), first_demo, demos_per_task)
        if is_libero_demo_file(path):
            instruction = libero_instruction(path)
            demos = [(n, read_libero_demo(path, n, filter_noops=filter_noops)) for n in names]
        else:
            instruction = cache_instruction(path) or task_description_from_filename(path)
            demos = [(n, read_cache_demo(path, n, with_optional=False)) for n in names]
        yield SourceTask(instruction, demos, str(path))


def _policy_device(policy: torch.nn.Module) -> torch.device:
    return next(policy.parameters()).device


@torch.no_grad()
def demo_action_logits(
    policy, processor, instruction: str, images: np.ndarray, *, batch_size: int = 16,
    progress: Callable[[int], None] | None = None, action_tokens: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """images [T, H, W, 3] uint8 → untempered action-id logits [T, 56, 256] float32 on CPU.

    Frames go through the processor as float tensors (the replay path of docs/models.md). A policy that decodes
    token by token (OpenVLA) is teacher-forced on ``action_tokens`` [T, D], the expert tokens of each frame.
    """
    if not policy.decodes_in_parallel and (action_tokens is None or len(action_tokens) != len(images)):
        raise ValueError("a token-by-token policy needs the expert action tokens of every frame to score them")
    device = _policy_device(policy)
    begin, vocab = int(policy.token_begin), int(policy.config.tokenizer_vocab_size)
    chunks = []
    for start in range(0, len(images), batch_size):
        frames = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(torch.float32)
        inputs = processor([instruction] * len(frames), frames)
        tokens = None if policy.decodes_in_parallel else action_tokens[start : start + len(frames)].to(device)
        out = policy(*(inputs[k].to(device) for k in PROMPT_INPUT_KEYS), tokens)
        chunks.append(out.logits[..., begin:vocab].float().cpu())
        if progress is not None:
            progress(len(frames))
    return torch.cat(chunks) if chunks else torch.zeros(0, policy.num_action_tokens, vocab - begin)


def compute_demo_logits(
    policy, processor, instruction: str, demo: Demo, *, batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Demo:  # fmt: skip
    """``demo`` with ``processed_action_logits`` [T, 56, 256], ``predicted_actions`` [T, C, D] (greedy decode,
    env scale; for a token-by-token policy the argmax of each row given the expert tokens before it) and
    ``action_tokens`` [T − C + 1, 56] (expert tokens of ``actions[t : t + C]``)."""
    tokenizer = policy.action_tokenizer
    chunks, dims = int(policy.num_action_chunks), int(policy.action_dim)
    windows = expert_windows(np.asarray(demo.actions, dtype=np.float32), chunks)
    expert = tokenizer.encode(torch.from_numpy(windows)) if len(windows) else torch.zeros(0, chunks * dims)
    logits = demo_action_logits(policy, processor, instruction, demo.images, batch_size=batch_size,
                                progress=progress, action_tokens=expert.long())  # fmt: skip
    greedy = logits.argmax(dim=-1) + int(policy.token_begin)
    predicted = tokenizer.decode(greedy.reshape(-1, chunks, dims)).to(torch.float32)
    return replace(
        demo,
        processed_action_logits=logits.numpy(),
        predicted_actions=predicted.numpy(),
        action_tokens=expert.to(torch.int64).numpy(),
    )


def base_model_bc_stats(demo: Demo, token_begin: int) -> tuple[float, float, int]:
    """CE and token accuracy of the expert tokens (absolute ids ≥ ``token_begin``) under the cached logits
    [T, 56, 256] over the windows that have expert tokens, and the number of windows."""
    if demo.action_tokens is None or demo.processed_action_logits is None or len(demo.action_tokens) == 0:
        return float("nan"), float("nan"), 0
    count = len(demo.action_tokens)
    logits = torch.from_numpy(np.asarray(demo.processed_action_logits[:count], dtype=np.float32))
    bins = torch.from_numpy(np.asarray(demo.action_tokens, dtype=np.int64)) - int(token_begin)
    loss, accuracy = action_token_cross_entropy(logits, bins, token_begin=0, vocab_size=logits.shape[-1])
    return float(loss), float(accuracy), count
