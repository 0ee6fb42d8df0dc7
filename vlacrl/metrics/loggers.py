"""Metric backends selected by ``runner.logger.logger_backends`` (console, tensorboard, wandb).

TensorBoard writes to ``<log_path>/tensorboard``; WandB to ``<log_path>/wandb`` with
``runner.logger.wandb.mode`` = online | offline | disabled (offline and disabled never need a key).
Besides scalars, :meth:`MetricLogger.log_image` (an [H, W, 3] uint8 array) and :meth:`MetricLogger.log_table`
(columns + rows: TensorBoard text as a markdown table, a ``wandb.Table``) and :meth:`MetricLogger.log_video` (an
mp4 file: an animated GIF in TensorBoard, ``wandb.Video``) reach the backends that support them.
The resolved config is saved as ``<log_path>/config.yaml`` by :func:`save_resolved_config`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Mapping

from vlacrl.metrics.crl_metrics import markdown_table

logger = logging.getLogger(__name__)


class ConsoleBackend:
    """One line per step with the metrics in sorted order (through ``logging``)."""

    def __init__(self, **_):
        pass

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        body = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
        logger.info("step %d: %s", step, body)

    def log_image(self, tag: str, image, step: int) -> None:
        pass

    def log_table(self, tag: str, columns: list[str], rows: list[list], step: int) -> None:
        logger.info("step %d: %s\n%s", step, tag, markdown_table(columns, rows))

    def log_video(self, tag: str, path: Path, step: int) -> None:
        logger.info("step %d: %s -> %s", step, tag, path)

    def close(self) -> None:
        pass


class TensorBoardBackend:
    def __init__(self, log_path: Path, **_):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_path / "tensorboard"))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                self.writer.add_scalar(key, float(value), step)
        self.writer.flush()

    def log_image(self, tag: str, image, step: int) -> None:
        self.writer.add_image(tag, image, step, dataformats="HWC")
        self.writer.flush()

    def log_table(self, tag: str, columns: list[str], rows: list[list], step: int) -> None:
        self.writer.add_text(tag, markdown_table(columns, rows), step)
        self.writer.flush()

    def log_video(self, tag: str, path: Path, step: int) -> None:
        from vlacrl.metrics.videos import gif_summary

        self.writer.file_writer.add_summary(gif_summary(tag, path), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbBackend:
    def __init__(self, log_path: Path, project: str, name: str, config: dict, mode: str = "disabled", **_):
        import wandb

        (log_path / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=name, config=config, dir=str(log_path), mode=mode, reinit=True)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_image(self, tag: str, image, step: int) -> None:
        import wandb

        self.run.log({tag: wandb.Image(image)}, step=step)

    def log_table(self, tag: str, columns: list[str], rows: list[list], step: int) -> None:
        import wandb

        self.run.log({tag: wandb.Table(columns=list(columns), data=[list(r) for r in rows])}, step=step)

    def log_video(self, tag: str, path: Path, step: int) -> None:
        import wandb

        self.run.log({tag: wandb.Video(str(path), format="mp4")}, step=step)

    def close(self) -> None:
        self.run.finish()


BACKENDS: dict[str, Callable[..., Any]] = {
    "console": ConsoleBackend,
    "tensorboard": TensorBoardBackend,
    "wandb": WandbBackend,
}


class MetricLogger:
    """Fans metrics out to every configured backend."""

    def __init__(
        self,
        backends: list[str],
        log_path: str | Path,
        *,
        project: str = "vlacrl",
        name: str = "run",
        config: dict | None = None,
        wandb_mode: str = "disabled",
    ):
        self.log_path = Path(log_path)
        self.log_path.mkdir(parents=True, exist_ok=True)
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown:
            raise ValueError(f"unknown logger backend(s) {unknown}; choose from {sorted(BACKENDS)}")
        kwargs = dict(log_path=self.log_path, project=project, name=name, config=config or {}, mode=wandb_mode)
        self.backends = [BACKENDS[b](**kwargs) for b in backends]

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        clean = {k: float(v) for k, v in metrics.items() if _is_number(v)}
        for backend in self.backends:
            backend.log(clean, step)

    def log_image(self, tag: str, image, step: int) -> None:
        """An [H, W, 3] uint8 RGB image (TensorBoard ``add_image`` HWC, WandB ``wandb.Image``; console: nothing)."""
        for backend in self.backends:
            getattr(backend, "log_image", _skip)(tag, image, step)

    def log_table(self, tag: str, columns: list[str], rows: list[list], step: int) -> None:
        """A table (TensorBoard text as a markdown table, WandB ``wandb.Table``, console: the markdown)."""
        for backend in self.backends:
            getattr(backend, "log_table", _skip)(tag, columns, rows, step)

    def log_video(self, tag: str, path: str | Path, step: int) -> None:
        """An episode video file (mp4): TensorBoard as an animated GIF, WandB as ``wandb.Video``.

        A video that cannot be read is skipped with a warning (videos never stop a run)."""
        for backend in self.backends:
            try:
                getattr(backend, "log_video", _skip)(tag, Path(path), step)
            except Exception as exc:  # noqa: BLE001
                logger.warning("could not log video %s: %s", path, exc)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def _skip(*_, **__) -> None:
    """A backend without images or tables ignores them."""


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def save_resolved_config(config: dict, log_path: str | Path) -> Path:
    """Write the resolved config as ``config.yaml`` (and ``config.json``) in the log dir."""
    import yaml

    path = Path(log_path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (path / "config.json").write_text(json.dumps(config, indent=2, default=str))
    return path / "config.yaml"
