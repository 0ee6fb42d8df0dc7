"""The checkpoints the CPU configs point at, made on first use (``actor.create_tiny_checkpoint: auto``).

* the tiny random OpenVLA-OFT directory (real architecture, tiny sizes: ``model/tiny-openvla-oft/``);
* a random Simple CNN checkpoint file (``model_name: simple_cnn``);
* with an ``actor.tiny_sft`` section, an *SFT base* trained on the probe expert's demos, the CPU counterpart of
  the paper's SFT checkpoints that RL starts from (docs/probe.md): the tiny OpenVLA-OFT fine-tuned
  (``model/tiny-openvla-oft-probe-sft/``), or the Simple CNN pre-trained with its own recipe and label smoothing
  (``model/simple-cnn-probe-sft/best_checkpoint.pt``). The demos are written to ``tiny_sft.demo_dir`` first
  when missing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig

from vlacrl.config.tiny_checkpoint import tiny_checkpoint_pending

logger = logging.getLogger(__name__)


def ensure_tiny_checkpoint(cfg: DictConfig) -> None:
    """Write the checkpoint ``actor.checkpoint_load_path`` names when it is missing and the config asks for it
    (``actor.create_tiny_checkpoint``: ``vlacrl.config.tiny_checkpoint``). Call it after validation."""
    if not tiny_checkpoint_pending(cfg):
        return
    path = Path(str(cfg.actor.checkpoint_load_path))
    sft = cfg.actor.get("tiny_sft")
    if str(cfg.actor.model.get("model_name", "openvla_oft")) == "simple_cnn":
        _write_cnn_sft_base(cfg, path, sft) if sft else _write_random_cnn(cfg, path)
    elif sft:
        _write_sft_base(cfg, path, sft)
    else:
        _write_tiny(path)


def _write_tiny(path: Path) -> None:
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    logger.info("creating the tiny OpenVLA-OFT checkpoint in %s (first run)", path)
    write_tiny_checkpoint(path)


def _write_random_cnn(cfg: DictConfig, path: Path) -> None:
    from vlacrl.envs.registry import simulator_for
    from vlacrl.models.simple_cnn_rl import write_random_cnn_checkpoint

    logger.info("creating a random Simple CNN checkpoint in %s (first run)", path)
    simulator, suite = simulator_for(cfg.env.train), str(cfg.env.train.task_suite_name)
    names = [simulator.task_language(suite, t) for t in range(simulator.num_tasks(suite))]
    write_random_cnn_checkpoint(path, names, unnorm_key=str(cfg.actor.model.unnorm_key))


def _expert_demo_files(cfg: DictConfig, sft: Mapping[str, Any]) -> list[Path]:
    """The probe expert's demo files in ``sft.demo_dir`` (``sft.demos_per_task`` per task of ``env.train``'s
    world, at ``sft.demo_step_size`` when given), recorded first when the folder has none."""
    from vlacrl.data import replay_files
    from vlacrl.data.expert_demos import write_expert_demos
    from vlacrl.envs.registry import simulator_for

    simulator = simulator_for(cfg.env.train)
    if simulator.name != "probe":
        raise ValueError(f"actor.tiny_sft needs the probe world's expert (env.train is {simulator.name!r})")
    demo_dir = Path(str(sft["demo_dir"]))
    files = (
        _in_task_order(replay_files(demo_dir), simulator, str(cfg.env.train.task_suite_name))
        if demo_dir.is_dir()
        else []
    )
    if not files:
        world = simulator.sim_config(cfg.env.train)
        if sft.get("demo_step_size") is not None:  # configs sharing a demo folder record the same demos
            world = dataclasses.replace(world, step_size=float(sft["demo_step_size"]))
        suite = str(cfg.env.train.task_suite_name)
        logger.info("recording probe expert demos in %s (first run)", demo_dir)
        files = write_expert_demos(world, range(simulator.num_tasks(suite)), int(sft["demos_per_task"]), demo_dir)
    return files


def _in_task_order(files: list[Path], simulator, suite: str) -> list[Path]:
    """Demo files in task-id order (as they are written), others after them by name: the SFT base's sample order,
    and so the base itself, must not depend on whether the demos were recorded in this run or an earlier one."""
    from vlacrl.data.formats import cache_file_name

    names = [cache_file_name(simulator.task_language(suite, t)) for t in range(simulator.num_tasks(suite))]
    rank = {name: i for i, name in enumerate(names)}
    return sorted(files, key=lambda path: (rank.get(path.name, len(names)), path.name))


def _write_cnn_sft_base(cfg: DictConfig, path: Path, sft: Mapping[str, Any]) -> None:
    """Expert demos → the Simple CNN's supervised recipe with ``sft.label_smoothing`` → the last epoch at ``path``
    (not the lowest validation loss: with a few hundred samples that can be an early, barely trained epoch)."""
    from vlacrl.models.simple_cnn_rl import square_image_size
    from vlacrl.training.simple_cnn_sft import SFTConfig, train_simple_cnn

    files = _expert_demo_files(cfg, sft)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as out_dir:
        config = SFTConfig(
            data=files, out_dir=out_dir, epochs=int(sft["epochs"]), batch_size=int(sft["batch_size"]),
            lr=float(sft["lr"]), seed=int(sft.get("seed", 0)), label_smoothing=float(sft.get("label_smoothing", 0)),
            unnorm_key=str(cfg.actor.model.unnorm_key), demos_per_task=int(sft["demos_per_task"]),
            save_every=int(sft["epochs"]), device="cpu", show_progress=False,
            image_size=square_image_size(cfg.actor.model.get("image_size", 224)),  # the size RL will feed it
        )  # fmt: skip
        logger.info("creating the Simple CNN SFT base %s: %d epochs on %d demo files (first run)",
                    path, config.epochs, len(files))  # fmt: skip
        result = train_simple_cnn(config)
        os.replace(Path(out_dir) / f"checkpoint_epoch_{config.epochs}.pt", path)
    logger.info("Simple CNN SFT base ready: validation loss %.3f", result.history[-1]["val_loss"])


def _write_sft_base(cfg: DictConfig, path: Path, sft: Mapping[str, Any]) -> None:
    """Tiny base → expert demos of every probe task (``env.train``'s world) → SFT → ``path``."""
    from vlacrl.training.oft_sft import SFTConfig, supervised_finetune

    base = Path(str(sft["base_model"]))
    if not (base / "config.json").exists():
        _write_tiny(base)
    files = _expert_demo_files(cfg, sft)
    config = SFTConfig(
        steps=int(sft["steps"]), batch_size=int(sft["batch_size"]), lr=float(sft["lr"]), seed=int(sft.get("seed", 0)),
        unnorm_key=str(cfg.actor.model.unnorm_key), demos_per_task=int(sft["demos_per_task"]),
        max_prompt_length=int(cfg.runner.max_prompt_length),
    )  # fmt: skip
    logger.info("creating the SFT base %s: %d steps on %d demo files (first run, about a minute)", path, config.steps,
                len(files))  # fmt: skip
    record = supervised_finetune(base, files, path, config)
    logger.info("SFT base ready: token accuracy %.2f, %.0f s", record["last"]["token_accuracy"], record["seconds"])
