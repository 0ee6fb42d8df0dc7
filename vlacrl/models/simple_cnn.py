"""The Simple CNN baseline policy (docs/methods/simple_cnn.md) and its checkpoint format.

Image encoder: Conv7×7/2 (3→64) + BN + ReLU + MaxPool3/2, then three stages of two [Conv3×3 (no bias) + BN
+ ReLU] blocks (64→128 stride 1, 128→256 stride 2, 256→512 stride 2; no residuals), global average pool
→ 512. Task embedding 128 → concatenated 640 → action head 640→512→512→(C·D·256) with ReLU + Dropout(0.1)
→ logits [B, 56, 256] over bin indices (no vocabulary offset). Value head 640→512→1 (unused).
Module names follow the reference (``image_encoder``, ``task_embedding``, ``action_head``, ``value_head``)
so its ``model_state_dict`` loads unchanged.

Checkpoints (supervised pre-training): a ``torch.save`` dict with ``epoch, model_state_dict,
optimizer_state_dict, train_loss, val_loss, task_id_map, num_tasks, num_action_chunks, action_dim,
norm_stats, unnorm_key, vocab_size, n_action_bins``; RL checkpoints (``model.pt``) are the bare state dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TVF
from torch import nn

from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TASK_EMBED_DIM, HIDDEN_DIM, IMAGE_FEATURES = 128, 512, 512
CHECKPOINT_KEYS = (
    "epoch",
    "model_state_dict",
    "optimizer_state_dict",
    "train_loss",
    "val_loss",
    "task_id_map",
    "num_tasks",
    "num_action_chunks",
    "action_dim",
    "norm_stats",
    "unnorm_key",
    "vocab_size",
    "n_action_bins",
)


def _conv_block(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_conv_block(in_ch, out_ch, stride), _conv_block(out_ch, out_ch, 1))


class SimpleCNNPolicy(nn.Module):
    """CNN image encoder + task-id embedding → per-token logits over ``n_action_bins`` bins."""

    def __init__(self, num_tasks: int, action_dim: int = 7, num_action_chunks: int = 8, n_action_bins: int = 256):
        super().__init__()
        self.action_dim, self.num_action_chunks, self.n_action_bins = action_dim, num_action_chunks, n_action_bins
        self.image_encoder = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            _stage(64, 128, 1),
            _stage(128, 256, 2),
            _stage(256, 512, 2),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
        self.task_embedding = nn.Embedding(num_tasks, TASK_EMBED_DIM)
        features = IMAGE_FEATURES + TASK_EMBED_DIM
        self.action_head = nn.Sequential(
            nn.Linear(features, HIDDEN_DIM), nn.ReLU(inplace=True), nn.Dropout(0.1),
            nn.Linear(HIDDEN_DIM, HIDDEN_DIM), nn.ReLU(inplace=True), nn.Dropout(0.1),
            nn.Linear(HIDDEN_DIM, action_dim * num_action_chunks * n_action_bins),
        )  # fmt: skip
        self.value_head = nn.Sequential(
            nn.Linear(features, HIDDEN_DIM), nn.ReLU(inplace=True), nn.Linear(HIDDEN_DIM, 1)
        )

    @property
    def num_action_tokens(self) -> int:
        return self.action_dim * self.num_action_chunks

    def features(self, pixel_values: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """pixel_values [B, 3, 224, 224] (or [B, N, 3, H, W], averaged over N), task_ids [B] → [B, 640]."""
        if pixel_values.ndim == 5:
            batch, n_images = pixel_values.shape[:2]
            image = self.image_encoder(pixel_values.flatten(0, 1)).view(batch, n_images, -1).mean(dim=1)
        else:
            image = self.image_encoder(pixel_values)
        return torch.cat([image, self.task_embedding(task_ids.reshape(-1).long())], dim=1)

    def forward(self, pixel_values: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """→ bin logits [B, C·D, n_action_bins]."""
        logits = self.action_head(self.features(pixel_values, task_ids))
        return logits.view(-1, self.num_action_tokens, self.n_action_bins)

    def values(self, pixel_values: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Unused critic: [B, 1]."""
        return self.value_head(self.features(pixel_values, task_ids))


def bin_logprobs_and_entropy(logits: torch.Tensor, bins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(bin) [B, 56] (bins clamped to [0, n_bins)) and entropy -Σ p log p [B, 56] of ``logits`` [B, 56, n_bins]."""
    log_probs = F.log_softmax(logits, dim=-1)
    chosen = bins.reshape(logits.shape[0], -1).long().clamp(0, logits.shape[-1] - 1)
    logprobs = log_probs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    return logprobs, entropy


def decode_bins(bins: torch.Tensor, tokenizer: ActionTokenizer) -> torch.Tensor:
    """Bin indices [..., D] → env-scale actions (center of bin ``clip(b, 0, 254)``, then un-normalised), float64."""
    k = bins.long().cpu().clamp(0, tokenizer.bin_centers.shape[0] - 1)
    return tokenizer.unnormalize(tokenizer.bin_centers[k])


def encode_actions(actions: torch.Tensor, tokenizer: ActionTokenizer) -> torch.Tensor:
    """Continuous actions [..., D] → nearest bin-center indices (0…254), the supervised targets."""
    normalized = tokenizer.normalize(actions)
    return (normalized.unsqueeze(-1) - tokenizer.bin_centers).abs().argmin(dim=-1)


def preprocess_images(images: torch.Tensor | np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 [B, H, W, 3] (rotated 180° already) → PIL → Resize(size) → ToTensor → ImageNet normalisation.

    Returns [B, 3, size, size] float32 (PIL's bilinear, antialiased resize, as torchvision ``Resize`` on PIL).
    """
    out = []
    for image in np.asarray(images, dtype=np.uint8):
        pil = TVF.to_pil_image(image)
        tensor = TVF.to_tensor(TVF.resize(pil, [size, size]))
        out.append(TVF.normalize(tensor, IMAGENET_MEAN, IMAGENET_STD))
    return torch.stack(out)


def task_id_for(description: str, task_id_map: dict[str, int]) -> int:
    """Exact match, else the first entry where one description contains the other (case-insensitive), else 0."""
    if description in task_id_map:
        return task_id_map[description]
    lowered = description.lower()
    for known, task_id in task_id_map.items():
        if lowered in known.lower() or known.lower() in lowered:
            return task_id
    return 0


def build_task_id_map(descriptions: list[str]) -> dict[str, int]:
    """Sorted unique descriptions → 0, 1, … (how the supervised trainer numbers tasks)."""
    return {desc: i for i, desc in enumerate(sorted(set(descriptions)))}


def save_checkpoint(
    path: str | Path,
    model: SimpleCNNPolicy,
    *,
    task_id_map: dict[str, int],
    norm_stats: dict[str, Any],
    unnorm_key: str,
    epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    train_loss: float | None = None,
    val_loss: float | None = None,
) -> Path:
    """Write the supervised-training checkpoint dict (all :data:`CHECKPOINT_KEYS`)."""
    payload = {
        "epoch": epoch, "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else None,
        "train_loss": train_loss, "val_loss": val_loss, "task_id_map": dict(task_id_map),
        "num_tasks": len(task_id_map), "num_action_chunks": model.num_action_chunks,
        "action_dim": model.action_dim, "norm_stats": norm_stats, "unnorm_key": unnorm_key,
        "vocab_size": 32000, "n_action_bins": model.n_action_bins,
    }  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def load_checkpoint(path: str | Path, num_tasks: int | None = None) -> tuple[SimpleCNNPolicy, dict[str, Any]]:
    """Load either format; returns the model and the metadata dict (empty for bare RL state dicts)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=False)
    if "model_state_dict" in payload:
        meta = {k: v for k, v in payload.items() if k not in ("model_state_dict", "optimizer_state_dict")}
        state = payload["model_state_dict"]
    else:
        meta, state = {}, payload
    tasks = meta.get("num_tasks") or num_tasks or state["task_embedding.weight"].shape[0]
    model = SimpleCNNPolicy(
        int(tasks),
        int(meta.get("action_dim", 7)),
        int(meta.get("num_action_chunks", 8)),
        int(meta.get("n_action_bins", 256)),
    )
    model.load_state_dict(state)
    return model, meta
