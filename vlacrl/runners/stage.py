"""One training run and one evaluation run, as library calls (used by the CLIs and the continual runner)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from vlacrl.metrics.timers import phase_table
from vlacrl.runners import checkpoint
from vlacrl.runners.embodied import EmbodiedRunner
from vlacrl.runners.session import start_run

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    log_path: Path
    global_step: int
    checkpoint: Path | None  # the newest complete checkpoint
    metrics: dict[str, float] = field(default_factory=dict)
    method_record: dict[str, Any] = field(default_factory=dict)  # what the CRL method's finish_task returned
    phases: str = ""  # where the time went (vlacrl.metrics.timers.phase_table)


def run_training(cfg: DictConfig) -> TrainResult:
    """Train (or resume) until ``runner.max_epochs`` global steps; finish the task with the CRL method."""
    with start_run(cfg, train=True) as (resolved, groups, metric_logger, resume_dir):
        runner = EmbodiedRunner(resolved, groups, metric_logger)
        runner.init_workers(resume_dir)
        metrics = runner.run() if runner.global_step < runner.max_steps else {}
        record = runner.finish_task()
        log_path = runner.log_path
        step = runner.global_step
        phases = phase_table(runner.time_totals, runner.steps_timed, runner.worker_counts())
    logger.info("%s", phases)
    return TrainResult(log_path, step, checkpoint.latest_checkpoint(log_path), metrics, record or {}, phases)


def run_evaluation(cfg: DictConfig, out_dir: str | Path | None = None) -> dict[str, float]:
    """Evaluate on ``env.eval``; writes ``eval_metrics.json`` in ``out_dir`` (default ``<log_path>/evals/<time>``)."""
    with open_dict(cfg):
        base = Path(str(cfg.runner.logger.log_path))
        cfg.runner.logger.log_path = str(out_dir or base / "evals" / time.strftime("%Y%m%d_%H%M%S"))
        cfg.runner.only_eval = True
    with start_run(cfg, train=False) as (resolved, groups, metric_logger, _):
        runner = EmbodiedRunner(resolved, groups, metric_logger)
        started = time.time()
        metrics = runner.evaluate()
        metric_logger.log(metrics, step=0)
        log_new_videos(metric_logger, resolved, started)
        out = Path(resolved["runner"]["logger"]["log_path"]) / "eval_metrics.json"
        out.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    logger.info("evaluation written to %s", out)
    return metrics


def log_new_videos(metric_logger, resolved: dict[str, Any], since: float) -> None:
    """Send the evaluation videos written since ``since`` to TensorBoard/WandB (at most
    ``runner.logger.max_logged_videos``, default 2) as ``eval/video/<name>``."""
    from vlacrl.metrics.videos import new_videos

    video_cfg = resolved["env"]["eval"].get("video_cfg") or {}
    limit = int(resolved["runner"]["logger"].get("max_logged_videos", 2))
    if not video_cfg.get("save_video") or limit <= 0:
        return
    for path in new_videos(video_cfg.get("video_base_dir", ""), since)[:limit]:
        metric_logger.log_video(f"eval/video/{path.stem}", path, step=0)
