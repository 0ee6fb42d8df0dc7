"""PNG figures of continual runs: the success-matrix heatmap, per-task success curves, a method comparison.

Figures are drawn on matplotlib's Agg canvas (``matplotlib.figure.Figure``, no pyplot, no display), so
they work headless and inside a training process. Success values are fractions; figures show percent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from vlacrl.metrics.crl_metrics import METRICS, SeedMatrix, Stat, metric_header

DPI = 100
HELD_OUT_COLOR = "0.45"


def _ordered_columns(matrix: SeedMatrix) -> tuple[list[int], int]:
    """Task ids of the columns (trained in training order, then held-out) and T, the number trained."""
    trained = [t for t in matrix.trained_order if t in matrix.tasks]
    return trained + matrix.held_out, len(trained)


def heatmap_figure(matrix: SeedMatrix, title: str | None = None) -> Figure:
    """The success matrix [R rows x J tasks] as an annotated heatmap (percent).

    Rows are the evaluations (``base``, ``stage_0``, ...); columns the trained tasks in training order, a
    dashed separator, then the held-out tasks (grey italic labels). The cell of each task in the row of the
    stage that first trained it (S_{s(j),j}) is outlined; unevaluated cells are light grey with "-".
    """
    columns, n_trained = _ordered_columns(matrix)
    values = matrix.success[:, [matrix.tasks.index(t) for t in columns]]
    n_rows, n_cols = values.shape
    fig = Figure(figsize=(max(4.0, 1.6 + 0.62 * n_cols), max(2.6, 1.5 + 0.42 * n_rows)), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = _colormap()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    _annotate_cells(ax, values, cmap)
    _outline_training_cells(ax, matrix, columns)
    ax.set_xticks(range(n_cols), [str(t) for t in columns])
    ax.set_yticks(range(n_rows), matrix.labels)
    for tick, task in zip(ax.get_xticklabels(), columns):
        if task not in matrix.trained_order:
            tick.set_color(HELD_OUT_COLOR)
            tick.set_fontstyle("italic")
    if 0 < n_trained < n_cols:
        ax.axvline(n_trained - 0.5, color="black", linestyle="--", linewidth=1.2)
    ax.set_xlabel(f"task (trained: {n_trained}, held-out: {n_cols - n_trained}, grey italic)")
    ax.set_ylabel("after")
    ax.set_title(title or "success (%)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="success")
    fig.tight_layout()
    return fig


def _colormap():
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="0.88")


def _annotate_cells(ax, values: np.ndarray, cmap) -> None:
    """Percent in every cell, black on light colours and white on dark ones."""
    for (row, col), value in np.ndenumerate(values):
        if not math.isfinite(value):
            ax.text(col, row, "-", ha="center", va="center", fontsize=8, color="black")
            continue
        red, green, blue, _ = cmap(float(value))
        color = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        ax.text(col, row, f"{value * 100:.0f}", ha="center", va="center", fontsize=8, color=color)


def _outline_training_cells(ax, matrix: SeedMatrix, columns: list[int]) -> None:
    """A red frame around S_{s(j),j}: each task in the row of the stage that first trained it."""
    seen: set[int] = set()
    for row, trained in enumerate(matrix.trained_tasks):
        for task in trained:
            if task in seen or task not in columns or matrix.labels[row] == "base":
                continue
            seen.add(task)
            col = columns.index(task)
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))


def figure_to_array(fig: Figure) -> np.ndarray:
    """The rendered figure as [H, W, 3] uint8 RGB."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def heatmap_array(matrix: SeedMatrix, title: str | None = None) -> np.ndarray:
    """:func:`heatmap_figure` as an [H, W, 3] uint8 array (TensorBoard ``add_image(..., dataformats="HWC")``)."""
    return figure_to_array(heatmap_figure(matrix, title))


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def plot_success_heatmap(matrix: SeedMatrix, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`heatmap_figure` as a PNG; returns ``path``."""
    return _save(heatmap_figure(matrix, title), path)


def plot_task_curves(matrix: SeedMatrix, path: str | Path, title: str | None = None) -> Path:
    """Success of every evaluated task over the sequence (x = rows), one line per task; writes a PNG.

    Trained tasks are solid lines with a star at the stage that first trained them; held-out tasks dashed.
    """
    columns, _ = _ordered_columns(matrix)
    fig = Figure(figsize=(max(5.0, 2.5 + 0.6 * len(matrix.labels)), 3.8), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(matrix.labels))
    colors = _task_colors(len(columns))
    for color, task in zip(colors, columns):
        values = matrix.success[:, matrix.tasks.index(task)] * 100
        held_out = task not in matrix.trained_order
        ax.plot(x, values, color=color, marker="o", markersize=3, linestyle="--" if held_out else "-",
                label=f"task {task}" + (" (held-out)" if held_out else ""))  # fmt: skip
        row = _first_training_row(matrix, task)
        if row is not None:
            ax.plot([row], [values[row]], marker="*", markersize=12, color=color, linestyle="none")
    ax.set_xticks(x, matrix.labels, rotation=30, ha="right")
    ax.set_ylim(-3, 103)
    ax.set_ylabel("success (%)")
    ax.set_xlabel("after")
    ax.grid(alpha=0.3)
    ax.set_title(title or "per-task success over the sequence (★ = trained in that stage)", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _save(fig, path)


def _first_training_row(matrix: SeedMatrix, task: int) -> int | None:
    return next((r for r, trained in enumerate(matrix.trained_tasks) if task in trained), None)


def _task_colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_method_comparison(
    summary: Mapping[str, Mapping[str, Stat]],
    path: str | Path,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Grouped bars: x = metrics, one bar per method (mean, percent) with s.e. error bars; writes a PNG.

    ``summary`` is :func:`vlacrl.metrics.crl_metrics.summarize`'s output. Metrics undefined (NaN) for
    every method are left out; a method's undefined metric is marked "n/a"; a NaN s.e. (one seed) draws no
    error bar.
    """
    names = [m for m in (metrics or list(METRICS))
             if any(math.isfinite(stats[m].mean) for stats in summary.values())]  # fmt: skip
    methods = list(summary)
    width = 0.8 / max(1, len(methods))
    fig = Figure(figsize=(max(5.0, 1.5 + 0.55 * len(names) * max(1, len(methods)) ** 0.5), 4.0), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    for i, (method, color) in enumerate(zip(methods, _task_colors(len(methods)))):
        stats = [summary[method][name] for name in names]
        means = [s.mean * 100 if math.isfinite(s.mean) else 0.0 for s in stats]
        errors = [s.se * 100 if math.isfinite(s.se) else 0.0 for s in stats]
        positions = x - 0.4 + width * (i + 0.5)
        ax.bar(positions, means, width, yerr=errors, capsize=3, color=color, label=method)
        for position, stat in zip(positions, stats):
            if not math.isfinite(stat.mean):
                ax.text(position, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="0.3")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [metric_header(n) for n in names])
    ax.set_ylabel("percentage points (mean ± s.e.)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or "method comparison", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
