"""Supervised pre-training of the Simple CNN baseline on LIBERO demonstrations (docs/methods/simple_cnn.md).

Recipe (the reference's ``simple_cnn_train.py``): every demo step t with a full chunk ``actions[t : t + 8]``
is one sample (agentview frame at t, task id, 8×7 action chunk). Action statistics (q01, q99, min, max,
mean, std) come from the same actions; the targets are the nearest bin centers (indices 0…254) after
q01/q99 normalisation of **every** dim (no mask: the gripper is normalised too). A seeded 10 % validation
split, AdamW (lr 1e-4, weight decay 1e-5), batch 32, cross-entropy over the 256 bins of each of the 56
outputs. ``best_checkpoint.pt`` is written whenever the validation loss improves and
``checkpoint_epoch_<e>.pt`` every ``save_every`` epochs, both in the format of
:func:`vlacrl.models.simple_cnn.save_checkpoint`.

Demo files: LIBERO's own HDF5 files (converted on reading: OpenVLA gripper convention, frames rotated by
180°, no-op steps dropped) or files in the replay layout (``…/datasets_with_logits/<suite>_simplevla_trajall``,
taken as they are), read by :func:`vlacrl.data.precompute.iter_hdf5_tasks`. Frames are held in memory as
uint8; resizing to 224 and ImageNet normalisation happen per batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from vlacrl.data.errors import ReplayDataError
from vlacrl.data.precompute import SourceTask, expand_inputs, iter_hdf5_tasks
from vlacrl.models.openvla_oft.action_tokenizer import ActionTokenizer
from vlacrl.models.simple_cnn import (
    SimpleCNNPolicy,
    build_task_id_map,
    encode_actions,
    preprocess_images,
    save_checkpoint,
)

logger = logging.getLogger(__name__)

DEFAULT_UNNORM_KEY = "libero_spatial_no_noops"
BEST_CHECKPOINT = "best_checkpoint.pt"


@dataclass
class SFTConfig:
    """Everything one pre-training run needs; defaults are the reference's."""

    data: Sequence[str | Path]
    out_dir: str | Path
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-5
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    num_action_chunks: int = 8
    action_dim: int = 7
    n_action_bins: int = 256
    image_size: int = 224
    unnorm_key: str = DEFAULT_UNNORM_KEY
    save_every: int = 5
    num_workers: int = 0
    demos_per_task: int | None = None
    show_progress: bool = True
    label_smoothing: float = 0.0  # 0 = the reference; > 0 leaves a uniform share in the policy (docs/probe.md)


@dataclass
class SFTResult:
    """Per-epoch history (``epoch``, ``train_loss``, ``val_loss``), the written checkpoints and the data."""

    history: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    task_id_map: dict[str, int] = field(default_factory=dict)
    norm_stats: dict[str, Any] = field(default_factory=dict)
    num_train: int = 0
    num_val: int = 0


# ---------------------------------------------------------------------------------------------- statistics


def compute_action_statistics(actions: np.ndarray, unnorm_key: str = DEFAULT_UNNORM_KEY) -> dict[str, Any]:
    """Actions [N, D] → ``{unnorm_key: {"action": {q01, q99, min, max, mean, std}}}`` (lists of D floats).

    No ``mask`` entry: every dim, the gripper included, is normalised (the reference's stats have none).
    """
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or len(actions) == 0:
        raise ReplayDataError(f"no actions to compute statistics from (got shape {actions.shape})")
    stats = {
        "q01": np.quantile(actions, 0.01, axis=0),
        "q99": np.quantile(actions, 0.99, axis=0),
        "min": actions.min(axis=0),
        "max": actions.max(axis=0),
        "mean": actions.mean(axis=0),
        "std": actions.std(axis=0),
    }
    return {unnorm_key: {"action": {k: v.tolist() for k, v in stats.items()}}}


def action_bin_targets(actions: np.ndarray | torch.Tensor, norm_stats: dict[str, Any], unnorm_key: str) -> torch.Tensor:
    """Actions [..., D] → bin indices [..., D] int64 (0…254): nearest bin center after q01/q99 normalisation."""
    tokenizer = ActionTokenizer.from_norm_stats(norm_stats, unnorm_key)
    return encode_actions(torch.as_tensor(np.asarray(actions)), tokenizer).long()


# ---------------------------------------------------------------------------------------------- data


def load_demo_tasks(inputs: Sequence[str | Path], demos_per_task: int | None = None) -> list[SourceTask]:
    """Demo ``.hdf5`` files or folders of them → one :class:`SourceTask` per file (replay layout).

    Raises :class:`ReplayDataError` (one line) for missing paths or folders without ``.hdf5`` files.
    """
    return list(iter_hdf5_tasks(expand_inputs(inputs), demos_per_task=demos_per_task))


def all_actions(tasks: Sequence[SourceTask]) -> np.ndarray:
    """Every step's action of every demo, concatenated: [ΣT, D] float32."""
    return np.concatenate([demo.actions for task in tasks for _, demo in task.demos], axis=0)


class SimpleCNNDemoDataset(Dataset):
    """One sample per (demo, t) with ``t + C <= T``.

    Item: ``image`` [H, W, 3] uint8 (policy orientation), ``task_id`` int, ``targets`` [C·D] int64 bin
    indices of ``actions[t : t + C]`` (chunk-major, as the model's 56 outputs).
    """

    def __init__(
        self,
        tasks: Sequence[SourceTask],
        task_id_map: dict[str, int],
        norm_stats: dict[str, Any],
        unnorm_key: str,
        num_action_chunks: int = 8,
    ):
        self.num_action_chunks = int(num_action_chunks)
        self.frames: list[np.ndarray] = []
        self.bins: list[torch.Tensor] = []
        self.task_ids: list[int] = []
        self.index: list[tuple[int, int]] = []
        for task in tasks:
            for _, demo in task.demos:
                slot = len(self.frames)
                self.frames.append(demo.images)
                self.bins.append(action_bin_targets(demo.actions, norm_stats, unnorm_key))
                self.task_ids.append(task_id_map[task.instruction])
                self.index.extend((slot, t) for t in range(demo.num_steps - self.num_action_chunks + 1))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        slot, t = self.index[i]
        return {
            "image": self.frames[slot][t],
            "task_id": self.task_ids[slot],
            "targets": self.bins[slot][t : t + self.num_action_chunks].reshape(-1),
        }


@dataclass
class SFTCollator:
    """Samples → ``pixel_values`` [B, 3, S, S] float32 (resize + ImageNet normalisation), ``task_ids`` [B]
    int64, ``targets`` [B, C·D] int64."""

    image_size: int = 224

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = np.stack([s["image"] for s in samples])
        return {
            "pixel_values": preprocess_images(images, size=self.image_size),
            "task_ids": torch.tensor([s["task_id"] for s in samples], dtype=torch.long),
            "targets": torch.stack([s["targets"] for s in samples]),
        }


def split_train_val(num_samples: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded random split of ``range(num_samples)`` → (train indices, val indices).

    ``val = int(num_samples · val_fraction)`` as the reference, but at least 1 when there are ≥ 2 samples
    and ``val_fraction > 0`` (so tiny sets still have a validation loss).
    """
    num_val = int(num_samples * val_fraction)
    if num_val == 0 and val_fraction > 0 and num_samples >= 2:
        num_val = 1
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed)).tolist()
    return order[num_val:], order[:num_val]


# ---------------------------------------------------------------------------------------------- training


def chunk_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean CE over all B·56 outputs: logits [B, 56, n_bins], targets [B, 56] int64 → scalar.

    With ``label_smoothing`` ε the target is ``(1 − ε)·onehot + ε/n_bins``: a converged model samples the demo's
    bin with probability ≈ 1 − ε and a uniform bin otherwise.
    """
    flat = logits.reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(flat, targets.reshape(-1), label_smoothing=label_smoothing)


def batch_loss(
    model: SimpleCNNPolicy, batch: dict[str, torch.Tensor], device: torch.device, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Collated batch (``pixel_values`` [B, 3, S, S], ``task_ids`` [B], ``targets`` [B, 56]) → mean CE."""
    pixels, task_ids, targets = (
        batch[k].to(device, non_blocking=True) for k in ("pixel_values", "task_ids", "targets")
    )
    return chunk_cross_entropy(model(pixels, task_ids), targets, label_smoothing)


def train_one_epoch(
    model: SimpleCNNPolicy,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    desc: str = "train",
    progress: bool = True,
    label_smoothing: float = 0.0,
) -> float:
    """One pass over ``loader`` in train mode; returns the sample-weighted mean loss."""
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False)
    for batch in bar:
        loss = batch_loss(model, batch, device, label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch["targets"])
        count += len(batch["targets"])
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return total / max(count, 1)


@torch.no_grad()
def evaluate(
    model: SimpleCNNPolicy,
    loader: DataLoader,
    device: torch.device,
    *,
    progress: bool = True,
    label_smoothing: float = 0.0,
) -> float:
    """Mean loss over ``loader`` in eval mode (NaN when empty)."""
    model.eval()
    total, count = 0.0, 0
    for batch in tqdm(loader, desc="validation", disable=not progress, leave=False):
        total += batch_loss(model, batch, device, label_smoothing).item() * len(batch["targets"])
        count += len(batch["targets"])
    return total / count if count else math.nan


def checkpoint_names(epoch: int, improved: bool, save_every: int) -> list[str]:
    """Files to write after ``epoch`` (1-based): best on improvement, the epoch file every ``save_every``."""
    names = [BEST_CHECKPOINT] if improved else []
    if save_every > 0 and epoch % save_every == 0:
        names.append(f"checkpoint_epoch_{epoch}.pt")
    return names


def resolve_device(device: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _loaders(dataset: Dataset, cfg: SFTConfig, device: torch.device) -> tuple[DataLoader, DataLoader, int, int]:
    train_idx, val_idx = split_train_val(len(dataset), cfg.val_fraction, cfg.seed)
    collate = SFTCollator(cfg.image_size)
    common = {"batch_size": cfg.batch_size, "collate_fn": collate, "num_workers": cfg.num_workers}
    common["pin_memory"] = device.type == "cuda"
    generator = torch.Generator().manual_seed(cfg.seed)
    train = DataLoader(Subset(dataset, train_idx), shuffle=True, generator=generator, **common)
    val = DataLoader(Subset(dataset, val_idx), shuffle=False, **common)
    return train, val, len(train_idx), len(val_idx)


def train_simple_cnn(cfg: SFTConfig) -> SFTResult:
    """The whole pre-training run; checkpoints go to ``cfg.out_dir``. Raises ReplayDataError for bad data."""
    tasks = load_demo_tasks(cfg.data, cfg.demos_per_task)
    task_id_map = build_task_id_map([task.instruction for task in tasks])
    norm_stats = compute_action_statistics(all_actions(tasks), cfg.unnorm_key)
    dataset = SimpleCNNDemoDataset(tasks, task_id_map, norm_stats, cfg.unnorm_key, cfg.num_action_chunks)
    if len(dataset) == 0:
        raise ReplayDataError(f"no demo has {cfg.num_action_chunks} steps: no training samples in {list(cfg.data)}")

    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = SimpleCNNPolicy(len(task_id_map), cfg.action_dim, cfg.num_action_chunks, cfg.n_action_bins).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_loader, val_loader, num_train, num_val = _loaders(dataset, cfg, device)
    logger.info("%d tasks, %d train / %d val samples on %s", len(task_id_map), num_train, num_val, device)

    result = SFTResult(task_id_map=task_id_map, norm_stats=norm_stats, num_train=num_train, num_val=num_val)
    best = math.inf
    loss_options = {"progress": cfg.show_progress, "label_smoothing": cfg.label_smoothing}
    for epoch in range(1, cfg.epochs + 1):
        desc = f"epoch {epoch}/{cfg.epochs}"
        train_loss = train_one_epoch(model, train_loader, optimizer, device, desc=desc, **loss_options)
        val_loss = evaluate(model, val_loader, device, **loss_options)
        improved = not math.isnan(val_loss) and val_loss < best
        best = val_loss if improved else best
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        for name in checkpoint_names(epoch, improved, cfg.save_every):
            path = save_checkpoint(
                Path(cfg.out_dir) / name, model, task_id_map=task_id_map, norm_stats=norm_stats,
                unnorm_key=cfg.unnorm_key, epoch=epoch, optimizer=optimizer, train_loss=train_loss, val_loss=val_loss,
            )  # fmt: skip
            result.checkpoints.append(path)
        logger.info("epoch %d: train loss %.4f, val loss %.4f", epoch, train_loss, val_loss)
    return result
