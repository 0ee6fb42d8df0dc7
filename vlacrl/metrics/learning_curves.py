"""Learning curves of a continual sequence: success per task against the global step, over all stages.

Sources: ``sequence_state_seed<S>.json`` (written by ``vlacrl-crl``: each stage's tasks and run dir), each stage's
TensorBoard scalars ``rollout/env_info/task_<k>_success`` (training-rollout success of the task(s) it trains,
one point per global step) and the success matrix rows (evaluation of every task after each stage, drawn as
markers at the stage's last step). Global steps count on across stages: stage i's step s is
``sum(steps of stages < i) + s``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = re.compile(r"sequence_state_seed(-?\d+)\.json$")
TASK_TAG = re.compile(r"rollout/env_info/task_(\d+)_success$")


class LearningCurveError(ValueError):
    """A run directory without what the curves need (one line for the CLI)."""


@dataclass
class SequenceCurves:
    """Curves of one seed of one sequence.

    Attributes:
        training: task → [(global step, training-rollout success)].
        evaluation: task → [(global step at a stage end, evaluated success)].
        stage_ends: the global step at which each stage ended (its last step + 1).
        stage_tasks: the tasks each stage trained.
    """

    seed: int
    training: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    evaluation: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    stage_ends: list[int] = field(default_factory=list)
    stage_tasks: list[list[int]] = field(default_factory=list)


def state_files(run_dir: str | Path) -> dict[int, Path]:
    """seed → ``sequence_state_seed<S>.json`` of a ``vlacrl-crl`` log path."""
    found = {}
    for path in Path(run_dir).glob("sequence_state_seed*.json"):
        match = STATE_FILE.search(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def _task_scalars(stage_dir: Path) -> dict[int, dict[int, float]]:
    """task → {stage-local step: value} of ``rollout/env_info/task_<k>_success`` under ``stage_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[int, dict[int, float]] = {}
    for path in sorted(stage_dir.rglob("events.out.tfevents*")):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            match = TASK_TAG.fullmatch(tag)
            if match:
                scalars.setdefault(int(match.group(1)), {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return scalars


def sequence_curves(state_path: str | Path, seed: int = 0) -> SequenceCurves:
    """The curves of the sequence recorded in one ``sequence_state_seed<S>.json``."""
    state = json.loads(Path(state_path).read_text())
    history = state.get("history") or []
    if not history:
        raise LearningCurveError(f"{state_path}: no finished stage")
    matrix = state.get("matrix") or {}
    rows = {row["label"]: row for row in matrix.get("rows", [])}
    curves, offset = SequenceCurves(seed=seed), 0
    for stage in history:
        scalars = _task_scalars(Path(stage["run_dir"]))
        steps = 1 + max((s for values in scalars.values() for s in values), default=-1)
        for task, values in scalars.items():
            curves.training.setdefault(task, []).extend((offset + s, v) for s, v in sorted(values.items()))
        offset += steps
        curves.stage_ends.append(offset)
        curves.stage_tasks.append([int(t) for t in stage["task_ids"]])
        row = rows.get(f"stage_{stage['index']}")
        if row:
            for task, value in zip(matrix["tasks"], row["success"]):
                if value is not None and value >= 0:
                    curves.evaluation.setdefault(int(task), []).append((offset, float(value)))
    return curves


def plot_learning_curves(curves: SequenceCurves, path: str | Path, title: str | None = None) -> Path:
    """One line per task (training-rollout success by global step), markers for the evaluations after each
    stage, dotted lines at stage boundaries; writes a PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(set(curves.training) | set(curves.evaluation))
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for index, task in enumerate(tasks):
        colour = colours(index % 10)
        if task in curves.training:
            steps, values = zip(*curves.training[task])
            ax.plot(steps, values, color=colour, lw=1.8, label=f"task {task} (training rollouts)")
        if task in curves.evaluation:
            steps, values = zip(*curves.evaluation[task])
            ax.plot(steps, values, color=colour, ls="none", marker="o", ms=7, mec="black",
                    label=f"task {task} (evaluation after each stage)")  # fmt: skip
    for end, trained in zip(curves.stage_ends, curves.stage_tasks):
        ax.axvline(end, color="grey", ls=":", lw=1)
        ax.text(end, 1.04, f"end of tasks {trained}", ha="right", va="bottom", fontsize=7, color="grey")
    ax.set(xlabel="global step", ylabel="success rate", ylim=(-0.03, 1.1))
    ax.set_title(title or f"learning curves (seed {curves.seed})", fontsize=10, pad=14)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_learning_curves(run_dir: str | Path, out_dir: str | Path, label: str) -> list[Path]:
    """``learning_curves_<label>_seed<S>.png`` for every seed of ``run_dir`` (none when it has no state file)."""
    paths = []
    for seed, state in state_files(run_dir).items():
        curves = sequence_curves(state, seed)
        paths.append(plot_learning_curves(curves, Path(out_dir) / f"learning_curves_{label}_seed{seed}.png",
                                          f"{label}: success by global step (seed {seed})"))  # fmt: skip
    return paths
