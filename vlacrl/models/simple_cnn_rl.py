"""The Simple CNN as an RL policy: the same worker-facing interface as OpenVLA-OFT (docs/methods/simple_cnn.md).

The rollout and actor workers call ``predict_action_batch`` / ``action_logprobs`` with the VLA batch keys,
so the CNN reuses the whole Ray loop:

* ``input_ids`` [B, 1] int64 — the task id (from the checkpoint's ``task_id_map``);
* ``attention_mask`` [B, 1] — ones (shape compatibility only);
* ``pixel_values`` [B, 3, 224, 224] — the ImageNet-normalised agentview frame;
* ``action_tokens`` [B, C, D] — bin indices 0…255 (no vocabulary offset).

Rollouts take the argmax bins when ``greedy`` (the reference) or draw them from softmax(logits), and
record ``log_softmax`` of the *raw* logits at the chosen bins; the actor recomputes the same quantity.
Temperature and top-k do not apply to the CNN (the reference uses neither for it). BatchNorm stays in eval
mode even while training (the reference); Dropout too unless ``train_dropout`` (the reference trains with it
active; ``actor.model.cnn_train_dropout``), so by default the actor's log-probs match the rollout's.

Checkpoints (``actor/model.pt``) use the supervised checkpoint dict (:data:`CHECKPOINT_KEYS` of
``vlacrl.models.simple_cnn``) so a chained task finds ``task_id_map`` and ``norm_stats`` in the file; the
reference's bare state dicts load too when ``actor.model.cnn_metadata_path`` names a checkpoint holding
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from vlacrl.models.errors import CNNCheckpointError
from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer
from vlacrl.models.openvla_oft.policy import ActionPrediction
from vlacrl.models.simple_cnn import (
    SimpleCNNPolicy,
    bin_logprobs_and_entropy,
    decode_bins,
    load_checkpoint,
    preprocess_images,
    save_checkpoint,
    task_id_for,
)

REQUIRED_METADATA = ("task_id_map", "norm_stats")
RL_CHECKPOINT = "model.pt"  # file name of the CNN's RL checkpoints inside <global_step_N>/actor/


class SimpleCNNRLPolicy(SimpleCNNPolicy):
    """:class:`SimpleCNNPolicy` plus its metadata and the rollout/training views of the VLA policy."""

    def __init__(self, num_tasks: int, meta: dict[str, Any], **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.meta = dict(meta)
        self.unnorm_key = str(meta.get("unnorm_key") or next(iter(meta["norm_stats"])))
        self.action_tokenizer = ActionTokenizer.from_norm_stats(
            meta["norm_stats"], self.unnorm_key, n_bins=self.n_action_bins
        )
        self.train_dropout = False

    def train(self, mode: bool = True) -> SimpleCNNRLPolicy:
        """Train mode for everything except BatchNorm (always eval mode) and Dropout (eval mode unless
        ``train_dropout``).

        Frozen BatchNorm statistics are the reference's choice, and so is active Dropout
        (``train_dropout=True``). Keeping Dropout off is our default: the rollout runs in eval mode, so the
        actor's log-probs of the rollout's bins then equal the rollout's own (importance ratio exactly 1 before
        the first update; active dropout adds noise to it).
        """
        super().train(mode)
        frozen = (nn.modules.batchnorm._BatchNorm,) if self.train_dropout else (nn.modules.batchnorm._BatchNorm,
                                                                                nn.Dropout)  # fmt: skip
        for module in self.modules():
            if isinstance(module, frozen):
                module.eval()
        return self

    def forward(self, pixel_values: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """→ bin logits [B, C·D, n_bins] (a fresh tensor, not a view: FSDP2 hooks the forward output)."""
        return super().forward(pixel_values, task_ids).clone()

    def enable_gradient_checkpointing(self) -> None:
        """Nothing to checkpoint: the CNN's activations are small."""

    @torch.no_grad()
    def predict_action_batch(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        greedy: bool = True,
        generator: torch.Generator | None = None,
    ) -> ActionPrediction:
        """Bins [B, C, D] (argmax, or drawn from softmax(logits) when not greedy) and env-scale actions."""
        logits = self(pixel_values, input_ids[:, 0])
        if greedy:
            bins = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits.float(), dim=-1).reshape(-1, logits.shape[-1])
            bins = torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])
        logprobs, _ = bin_logprobs_and_entropy(logits, bins)
        bins = bins.reshape(-1, self.num_action_chunks, self.action_dim)
        actions = decode_bins(bins, self.action_tokenizer)
        return ActionPrediction(actions, bins, logprobs, logits, None)

    def action_logprobs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        action_tokens: torch.Tensor,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """``logprobs``/``entropy`` [B, 56] of the bins ``action_tokens``; logits [B, 56, 256] as both
        ``raw_logits`` and ``processed_logits``."""
        logits = self(pixel_values, input_ids[:, 0])
        logprobs, entropy = bin_logprobs_and_entropy(logits, action_tokens)
        return {"logprobs": logprobs, "entropy": entropy, "raw_logits": logits, "processed_logits": logits}

    def save(self, path: str | Path, state: dict[str, torch.Tensor] | None = None) -> Path:
        """Write ``model.pt`` (supervised checkpoint dict; ``state`` = full state dict, default own)."""
        saved = SimpleCNNPolicy(self.task_embedding.num_embeddings, self.action_dim, self.num_action_chunks)
        saved.load_state_dict(state if state is not None else self.state_dict())
        return save_checkpoint(
            path, saved, task_id_map=self.meta["task_id_map"], norm_stats=self.meta["norm_stats"],
            unnorm_key=self.unnorm_key, epoch=int(self.meta.get("epoch") or 0),
        )  # fmt: skip


def _metadata(path: Path, meta: dict[str, Any], metadata_path: str | None) -> dict[str, Any]:
    if all(meta.get(k) for k in REQUIRED_METADATA):
        return meta
    if metadata_path is None:
        raise CNNCheckpointError(
            f"{path} is a bare state dict without task_id_map/norm_stats; set actor.model.cnn_metadata_path "
            "to the supervised checkpoint (best_checkpoint.pt) it was trained from"
        )
    _, extra = load_checkpoint(check_checkpoint_file(metadata_path))
    missing = [k for k in REQUIRED_METADATA if not extra.get(k)]
    if missing:
        raise CNNCheckpointError(f"actor.model.cnn_metadata_path {metadata_path} lacks {missing}")
    return {**extra, **{k: v for k, v in meta.items() if v}}


def check_checkpoint_file(path: str | Path) -> Path:
    """The Simple CNN checkpoint file, or one clear error saying what to pass."""
    path = Path(path)
    if not path.is_file():
        raise CNNCheckpointError(
            f"Simple CNN checkpoint {path} not found: train one with vlacrl-train-simple-cnn "
            "(best_checkpoint.pt) or pass a previous task's .../checkpoints/global_step_<G>/actor/model.pt"
        )
    return path


def load_rl_policy(path: str | Path, metadata_path: str | None = None) -> SimpleCNNRLPolicy:
    """Load a supervised checkpoint, our ``model.pt``, or a bare state dict (+ ``metadata_path``)."""
    path = check_checkpoint_file(path)
    try:
        plain, meta = load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CNNCheckpointError(f"cannot load Simple CNN checkpoint {path}: {exc}") from None
    meta = _metadata(path, meta, metadata_path)
    model = SimpleCNNRLPolicy(
        plain.task_embedding.num_embeddings, meta,
        action_dim=plain.action_dim, num_action_chunks=plain.num_action_chunks, n_action_bins=plain.n_action_bins,
    )  # fmt: skip
    model.load_state_dict(plain.state_dict())
    return model


def square_image_size(size: Any = 224) -> int:
    """The CNN's input side from ``actor.model.image_size``: an int or an ``[H, W]`` pair (H is used)."""
    return int(size) if isinstance(size, (int, float, str)) else int(size[0])


class SimpleCNNProcessor:
    """Task descriptions + frames → the CNN's batch in the VLA keys (see the module docstring)."""

    def __init__(self, task_id_map: dict[str, int], image_size: int = 224):
        self.task_id_map, self.image_size = dict(task_id_map), image_size

    def __call__(self, task_descriptions: list[str], images: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """images uint8 [B, H, W, 3] in the policy orientation → input_ids [B, 1], attention_mask [B, 1],
        pixel_values [B, 3, S, S] float32."""
        ids = torch.tensor([[task_id_for(d, self.task_id_map)] for d in task_descriptions], dtype=torch.long)
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids, dtype=torch.bool),
            "pixel_values": preprocess_images(images, self.image_size),
        }


def write_random_cnn_checkpoint(
    path: str | Path,
    task_names: Sequence[str] | None = None,
    unnorm_key: str = "libero_spatial_no_noops",
    seed: int = 0,
) -> Path:
    """A randomly initialised CNN in the supervised checkpoint format, for CPU runs and tests.

    Args:
        task_names: the suite's instructions (default: LIBERO-Spatial's); ``task_id_map`` numbers them as the
            supervised trainer would (sorted).
        unnorm_key: which of the tiny checkpoint's synthetic action statistics to store, without a mask (all 7
            dims normalised, as statistics computed from demos by ``compute_action_statistics``).
    """
    from vlacrl.models.openvla_oft.presets import synthetic_dataset_statistics
    from vlacrl.models.simple_cnn import build_task_id_map

    if task_names is None:
        from vlacrl.envs.registry import get_simulator

        libero = get_simulator("libero")
        task_names = [libero.task_language("libero_spatial", i) for i in range(libero.num_tasks("libero_spatial"))]
    key = unnorm_key
    action = {k: v for k, v in synthetic_dataset_statistics()[key]["action"].items() if k != "mask"}
    names = list(task_names)
    torch.manual_seed(seed)
    model = SimpleCNNPolicy(len(set(names)))
    return save_checkpoint(
        path, model, task_id_map=build_task_id_map(names), norm_stats={key: {"action": action}}, unnorm_key=key
    )
