"""Helpers of the learning tests: cpu_probe CLI runs as a user runs them, TensorBoard curves, the learning check."""

import os
import subprocess
import sys
from pathlib import Path

LEARNED_SUCCESS = 0.75  # the last steps' mean rollout success a learning run must reach
MIN_GAIN = 0.25  # ... and how far above its first step
ONE_EPISODE = 1 / 16  # one episode of cpu_probe's 16 training envs


def probe_overrides(probe_base: dict[str, Path], log_path: Path, *extra: str) -> list[str]:
    """cpu_probe overrides that use the session's SFT base and log under ``log_path``."""
    return [
        f"actor.checkpoint_load_path={probe_base['model']}", "actor.create_tiny_checkpoint=False",
        f"runner.logger.log_path={log_path}", *extra,
    ]  # fmt: skip


def run_cli(module: str, overrides: list[str], *, env: dict | None = None, timeout: int = 900, config="cpu_probe"):
    """``python -m module --config-name <config> overrides...`` as a user runs it; a non-zero exit fails."""
    cmd = [sys.executable, "-m", module, "--config-name", config, *overrides]
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def scalar_curve(log_dir: Path, tag: str) -> list[float]:
    """Values of ``tag`` by step from the TensorBoard files under ``log_dir`` (one run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(Path(log_dir).rglob("events.out.tfevents*"))
    assert files, f"no TensorBoard files under {log_dir}"
    values = {}
    for path in files:
        acc = EventAccumulator(str(path))
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            values.update({e.step: e.value for e in acc.Scalars(tag)})
    return [values[step] for step in sorted(values)]


def learned(success: list[float]) -> bool:
    """Whether a rollout-success curve shows learning: the last 3 steps' mean is at least ``LEARNED_SUCCESS``
    and ``MIN_GAIN`` above the first step. A curve that already starts at ``LEARNED_SUCCESS`` or above cannot gain
    ``MIN_GAIN``; it counts when it ends no lower than it started, within one episode of the 16 training envs."""
    late = sum(success[-3:]) / len(success[-3:])
    if success[0] >= LEARNED_SUCCESS:
        return late >= success[0] - ONE_EPISODE
    return late >= LEARNED_SUCCESS and late >= success[0] + MIN_GAIN
