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
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig

from vlacrl.config.tiny_checkpoint import tiny_checkpoint_pending
from vlacrl.models.families import family_of

logger = logging.getLogger(__name__)


def ensure_tiny_checkpoint(cfg: DictConfig) -> None:
    """Write the checkpoint ``actor.checkpoint_load_path`` names when it is missing and the config asks for it
    (``actor.create_tiny_checkpoint``: ``vlacrl.config.tiny_checkpoint``): the family's SFT base when the config
    has an ``actor.tiny_sft`` section, else its tiny random checkpoint. Call it after validation."""
    if not tiny_checkpoint_pending(cfg):
        return
    family = family_of(cfg)
    path = Path(str(cfg.actor.checkpoint_load_path))
    sft = cfg.actor.get("tiny_sft")
    if sft:
        family.write_sft_base(cfg, path, sft, _expert_demo_files(cfg, sft))
    else:
        family.write_tiny(cfg, path)


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
