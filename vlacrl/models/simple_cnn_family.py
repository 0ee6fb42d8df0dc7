"""The Simple CNN baseline as a :class:`~vlacrl.models.families.PolicyFamily` (``model_name: simple_cnn``).

Every weight trains (no LoRA); a checkpoint is one ``model.pt`` file in the supervised checkpoint format
(docs/methods/simple_cnn.md). A stage starts from the previous stage's ``actor/model.pt`` through
``actor.checkpoint_load_path``, as the reference's launcher chains it, and is evaluated through
``rollout.checkpoint_path`` (the reference's CNN evaluation key).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from vlacrl.models.errors import CNNCheckpointError, ModelPathError
from vlacrl.models.families import PolicyFamily, config_value, model_dtype, worker_device
from vlacrl.models.lora import base_module
from vlacrl.models.simple_cnn_rl import (
    RL_CHECKPOINT,
    SimpleCNNProcessor,
    load_rl_policy,
    square_image_size,
    write_random_cnn_checkpoint,
)

logger = logging.getLogger(__name__)


class SimpleCNNFamily(PolicyFamily):
    name = "simple_cnn"
    label = "Simple CNN"
    trainable_only_state = False  # model.pt holds the whole network

    # ------------------------------------------------------------------------------------------ worker side
    def build(self, cfg: Mapping[str, Any], path: str, use_gpu: bool) -> torch.nn.Module:
        """The CNN from a checkpoint file (every parameter trainable), on the worker's device and dtype."""
        model_cfg = cfg["actor"]["model"]
        model = load_rl_policy(path, model_cfg.get("cnn_metadata_path"))
        model.train_dropout = bool(model_cfg.get("cnn_train_dropout", False))
        return model.to(device=worker_device(use_gpu), dtype=model_dtype(model_cfg, use_gpu))

    def processor(self, cfg: Mapping[str, Any], path: str, model: torch.nn.Module | None = None):
        """The task-id map comes from the built ``model`` (loaded from ``path`` only when none is given)."""
        if model is None:
            model = load_rl_policy(path, cfg["actor"]["model"].get("cnn_metadata_path"))
        task_id_map = base_module(model).meta["task_id_map"]
        return SimpleCNNProcessor(task_id_map, square_image_size(cfg["actor"]["model"].get("image_size", 224)))

    def save(self, model: torch.nn.Module, full_state: dict[str, torch.Tensor], actor_dir: Path) -> None:
        actor_dir.mkdir(parents=True, exist_ok=True)
        base_module(model).save(actor_dir / RL_CHECKPOINT, full_state)

    def resume_cfg(self, cfg: Mapping[str, Any], actor_dir: Path) -> dict[str, Any]:
        return {**cfg, "actor": {**cfg["actor"], "checkpoint_load_path": str(actor_dir / RL_CHECKPOINT)}}

    # ------------------------------------------------------------------------------------------ driver side
    def start_from(self, cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
        """The stage's ``actor/model.pt`` (which must exist: no random checkpoint is ever made in its place)."""
        model_pt = str(Path(actor_dir) / RL_CHECKPOINT)
        return {"actor.checkpoint_load_path": model_pt, "actor.create_tiny_checkpoint": False}

    def eval_from(self, cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
        return {"rollout.checkpoint_path": str(Path(actor_dir) / RL_CHECKPOINT)}

    def checkpoint_present(self, path: Path) -> bool:
        return path.exists()

    def check_paths(self, cfg: Mapping[str, Any], pending: str | None) -> None:
        """The checkpoint files the actor and the rollout load exist and carry their metadata."""
        if config_value(cfg, "actor.model.is_lora", False):
            raise ModelPathError("actor.model.is_lora", "the Simple CNN trains all its weights; set it to False")
        keys = ["rollout.checkpoint_path"] if config_value(cfg, "rollout.checkpoint_path") else ["rollout.model_dir"]
        for key in dict.fromkeys(keys + ["actor.checkpoint_load_path"]):
            path = str(config_value(cfg, key))
            if path == pending:
                continue
            try:
                load_rl_policy(path, config_value(cfg, "actor.model.cnn_metadata_path"))
            except CNNCheckpointError as exc:
                raise ModelPathError(key, str(exc)) from None

    def write_tiny(self, cfg: Mapping[str, Any], path: Path) -> None:
        """A random CNN over the tasks of ``env.train``'s suite."""
        from vlacrl.envs.registry import simulator_for

        logger.info("creating a random Simple CNN checkpoint in %s (first run)", path)
        simulator, suite = simulator_for(cfg["env"]["train"]), str(cfg["env"]["train"]["task_suite_name"])
        names = [simulator.task_language(suite, t) for t in range(simulator.num_tasks(suite))]
        write_random_cnn_checkpoint(path, names, unnorm_key=str(config_value(cfg, "actor.model.unnorm_key")))

    def write_sft_base(self, cfg: Mapping[str, Any], path: Path, sft: Mapping[str, Any], demos: Sequence[Path]):
        """The CNN's supervised recipe with ``sft.label_smoothing`` → the last epoch at ``path`` (not the lowest
        validation loss: with a few hundred samples that can be an early, barely trained epoch)."""
        from vlacrl.training.simple_cnn_sft import SFTConfig, train_simple_cnn

        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as out_dir:
            config = SFTConfig(
                data=list(demos), out_dir=out_dir, epochs=int(sft["epochs"]), batch_size=int(sft["batch_size"]),
                lr=float(sft["lr"]), seed=int(sft.get("seed", 0)), label_smoothing=float(sft.get("label_smoothing", 0)),
                unnorm_key=str(config_value(cfg, "actor.model.unnorm_key")), demos_per_task=int(sft["demos_per_task"]),
                save_every=int(sft["epochs"]), device="cpu", show_progress=False,
                image_size=square_image_size(config_value(cfg, "actor.model.image_size", 224)),  # as RL feeds it
            )  # fmt: skip
            logger.info("creating the Simple CNN SFT base %s: %d epochs on %d demo files (first run)",
                        path, config.epochs, len(demos))  # fmt: skip
            result = train_simple_cnn(config)
            os.replace(Path(out_dir) / f"checkpoint_epoch_{config.epochs}.pt", path)
        logger.info("Simple CNN SFT base ready: validation loss %.3f", result.history[-1]["val_loss"])
