"""A run session shared by training, evaluation and the continual runner: checks before Ray, Ray start-up,
clean errors."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vlacrl.config.resolvers import register_resolvers
from vlacrl.config.tiny_checkpoint import tiny_checkpoint_pending
from vlacrl.config.validate import ConfigError, check_paths, validate_config
from vlacrl.envs.registry import prepare_simulators
from vlacrl.runners import checkpoint
from vlacrl.runners.cpu_checkpoints import ensure_tiny_checkpoint
from vlacrl.runners.resume_check import check_resumable

logger = logging.getLogger(__name__)
register_resolvers()


def local_gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def resume_dir(resolved: dict[str, Any]) -> Path | None:
    """``runner.resume``: auto → latest complete checkpoint in the log dir; disable → None; else that dir.

    The checkpoint's files are opened first (:func:`check_resumable`): a damaged one is one line, before Ray."""
    mode = str(resolved["runner"].get("resume", "auto"))
    if mode == "disable":
        return None
    if mode == "auto":
        path = checkpoint.latest_checkpoint(resolved["runner"]["logger"]["log_path"])
        if path is None:
            return None
    else:
        path = Path(mode)
        if not (path / checkpoint.COMPLETE).exists():
            raise ConfigError(f"runner.resume: {path} is not a complete checkpoint (no {checkpoint.COMPLETE} file)")
    check_resumable(path)
    return path


def validate_and_prepare(cfg: DictConfig, num_gpus: int):
    """Validate; only then write the tiny checkpoint the config asks for, and check it like any model dir.

    Returns :func:`validate_config`'s sizes. Nothing is written when validation fails."""
    pending = tiny_checkpoint_pending(cfg)
    sizes = validate_config(cfg, num_gpus)
    ensure_tiny_checkpoint(cfg)
    if pending:
        check_paths(cfg, sizes.placement)
    return sizes


@contextlib.contextmanager
def start_run(cfg: DictConfig, *, train: bool):
    """Validate, start Ray and the workers; yields (resolved cfg, groups, metric logger, resume dir)."""
    from vlacrl.distributed.cluster import cluster_gpus, init_ray
    from vlacrl.metrics.loggers import MetricLogger, save_resolved_config
    from vlacrl.runners.workers import create_groups

    prepare_simulators(cfg)
    address = cfg.cluster.get("address")
    if address:  # joining a cluster: GPUs are known (and the placement checked) only after joining
        ensure_tiny_checkpoint(cfg)
    else:
        sizes = validate_and_prepare(cfg, local_gpu_count())
    resolved = OmegaConf.to_container(cfg, resolve=True)
    log_path = Path(resolved["runner"]["logger"]["log_path"]).resolve()
    resolved["runner"]["logger"]["log_path"] = str(log_path)
    ckpt = resume_dir(resolved) if train else None
    save_resolved_config(resolved, log_path)
    init_ray(address, resolved["cluster"].get("ray_object_store_memory"))
    if address:  # the real GPU count is known only now
        sizes = validate_config(cfg, cluster_gpus())
    logger_cfg = resolved["runner"]["logger"]
    metric_logger = MetricLogger(
        list(logger_cfg.get("logger_backends") or ["console"]), log_path,
        project=logger_cfg.get("project_name", "vlacrl"), name=logger_cfg.get("experiment_name", "run"),
        config=resolved, wandb_mode=(logger_cfg.get("wandb") or {}).get("mode", "disabled"),
    )  # fmt: skip
    try:
        groups = create_groups(
            resolved, sizes, train=train, timeout_s=float(resolved["cluster"]["placement_timeout_s"])
        )
        locate_and_check(groups, log_path, train=train)
        yield resolved, groups, metric_logger, ckpt
    finally:
        metric_logger.close()
        _shutdown_ray()


def locate_and_check(groups, log_path: Path, *, train: bool) -> None:
    """Record which node runs which worker (``placement.json``); for training, check that every actor rank sees
    the log directory (checkpoints)."""
    from vlacrl.runners.errors import ray_get
    from vlacrl.runners.nodes import check_shared_log_path, locate_workers, record_placement

    def get(refs):
        return ray_get(refs, groups)

    groups.placement = locate_workers(groups, get)
    record_placement(groups.placement, log_path)
    if train:
        check_shared_log_path(groups, groups.placement, log_path, get)


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
