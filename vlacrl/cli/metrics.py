"""``vlacrl-metrics RUN_DIR [RUN_DIR ...]``: continual-learning metrics of finished sequences, side by side.

    vlacrl-metrics logs_spatial/sequential logs_spatial/ewc logs_spatial/multitask
    vlacrl-metrics runs/a_seed1 runs/a_seed2 runs/b --label a a b --single-task-ref runs/single --out cmp/

Each RUN_DIR is a ``vlacrl-crl`` ``runner.logger.log_path`` with ``success_matrix_seed<S>.json`` files (or a
plain ``success_matrix.json``). Run dirs with the same label (``--label``, default: the dir name without a
trailing ``_seed<S>``) are pooled as seeds of one method. Prints a markdown table (rows: methods; columns:
AVG, ΔAVG, NBT, FWT, ZS, ΔZS, FAR, BWT, FT, F as "mean ± s.e." in percentage points over seeds) and writes
``metrics.md``, ``metrics.csv``, ``<label>_per_seed.json`` (fractions) and PNGs into ``--out`` (default:
``<first RUN_DIR>/metrics``): success heatmaps, per-task curves over stages, the method comparison and
``learning_curves_<label>_seed<S>.png`` (success per task by global step, from the stages' TensorBoard logs).
Formulas: docs/metrics.md. Bad input: one ``error:`` line, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Callable

from vlacrl.cli.common import OneLineParser, output_dir
from vlacrl.metrics.crl_metrics import (
    METRICS,
    MetricsError,
    RunMetrics,
    check_same_tasks,
    comparison_csv_rows,
    comparison_rows,
    evaluate_run,
    load_run,
    markdown_table,
    mean_matrix,
    single_task_reference,
    summarize,
)

SEED_SUFFIX = re.compile(r"_seed-?\d+$")
UNIT_LINE = "Cells: mean ± standard error over seeds, in percentage points (success x 100)."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="vlacrl-metrics", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=output_dir, default=None, help="output dir (default: <first RUN_DIR>/metrics)")
    parser.add_argument("--label", nargs="+", default=None, metavar="NAME",
                        help="one method name per RUN_DIR (same name = seeds of one method)")  # fmt: skip
    parser.add_argument("--single-task-ref", action="extend", nargs="+", default=[], metavar="RUN_DIR|FILE.json",
                        help="S^single_j for FWT: single-task run dir(s) or JSON {task: success} file(s); a task "
                             "found in several gets their mean")  # fmt: skip
    parser.add_argument("--format", choices=["md", "csv", "both"], default="both",
                        help="tables to write (md also sets what is printed)")  # fmt: skip
    parser.add_argument("--allow-missing", action="store_true",
                        help="treat -1 cells as missing (NaN) instead of failing")  # fmt: skip
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    return parser.parse_args(argv)


def default_label(run_dir: Path) -> str:
    """The dir name without a trailing ``_seed<S>`` (so per-seed dirs of one method pool)."""
    return SEED_SUFFIX.sub("", run_dir.resolve().name) or run_dir.resolve().name


def file_stem(label: str) -> str:
    """``label`` made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "run"


def load_methods(args: argparse.Namespace) -> list[RunMetrics]:
    """Group the run dirs by label, load their seeds, check the task lists, compute every metric."""
    labels = args.label or [default_label(d) for d in args.run_dirs]
    if len(labels) != len(args.run_dirs):
        raise MetricsError(f"--label needs one name per RUN_DIR ({len(args.run_dirs)}), got {len(labels)}")
    groups: dict[str, list[Path]] = {}
    for label, run_dir in zip(labels, args.run_dirs):
        groups.setdefault(label, []).append(run_dir)
    seeds = {label: [m for d in dirs for m in load_run(d, allow_missing=args.allow_missing)]
             for label, dirs in groups.items()}  # fmt: skip
    for label, matrices in seeds.items():
        ids = [m.seed for m in matrices]
        if len(ids) != len(set(ids)):
            raise MetricsError(f"method {label!r}: the same seed appears twice ({ids}); give the dirs different labels")
    check_same_tasks(seeds)
    reference = single_task_reference(args.single_task_ref) if args.single_task_ref else None
    return [evaluate_run(label, matrices, reference, groups[label]) for label, matrices in seeds.items()]


def render_markdown(runs: list[RunMetrics]) -> str:
    """The comparison table, the unit line and the notes of every method."""
    columns, rows = comparison_rows(runs)
    lines = [markdown_table(columns, rows), "", UNIT_LINE]
    lines += [f"- {r.label}: {note}" for r in runs for note in r.notes]
    return "\n".join(lines) + "\n"


def write_csv(runs: list[RunMetrics], path: Path) -> None:
    columns, rows = comparison_csv_rows(runs)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)


def write_per_seed(run: RunMetrics, path: Path) -> None:
    """Per-seed metric values (fractions, null = undefined), the summary and the notes."""
    summary = summarize({run.label: run.per_seed})[run.label]

    def clean(value: float) -> float | None:
        return value if math.isfinite(value) else None  # NaN → null

    data = {
        "label": run.label,
        "run_dirs": run.run_dirs,
        "unit": "fraction",
        "metrics": list(METRICS),
        "seeds": [
            {"seed": m.seed, "source": m.source, "metrics": {k: clean(v) for k, v in values.items()}}
            for m, values in zip(run.seeds, run.per_seed)
        ],
        "summary": {k: {"mean": clean(s.mean), "se": clean(s.se), "n": s.n} for k, s in summary.items()},
        "notes": run.notes,
    }
    path.write_text(json.dumps(data, indent=2))


def write_plots(runs: list[RunMetrics], out: Path) -> list[Path]:
    """Heatmap and task curves of each method (seed mean when the seeds share their rows) and the comparison."""
    from vlacrl.metrics import plots

    paths = []
    for run in runs:
        matrix = mean_matrix(run.seeds)
        what = f"{run.label}: {matrix.source if matrix.seed is None else f'seed {matrix.seed}'}"
        paths.append(plots.plot_success_heatmap(matrix, out / f"heatmap_{file_stem(run.label)}.png", what))
        paths.append(plots.plot_task_curves(matrix, out / f"task_curves_{file_stem(run.label)}.png", what))
    summary = summarize({r.label: r.per_seed for r in runs})
    paths.append(plots.plot_method_comparison(summary, out / "comparison.png"))
    return paths


def write_run_curves(args: argparse.Namespace, out: Path) -> list[Path]:
    """Learning curves (success per task by global step) of every RUN_DIR that has a sequence state file."""
    from vlacrl.metrics.learning_curves import LearningCurveError, write_learning_curves

    labels = args.label or [default_label(d) for d in args.run_dirs]
    paths = []
    for run_dir, label in zip(args.run_dirs, labels):
        try:
            paths += write_learning_curves(run_dir, out, file_stem(label))
        except LearningCurveError as exc:
            print(f"note: no learning curves for {run_dir}: {exc}", file=sys.stderr)
    return paths


TABLE_WRITERS: dict[str, Callable[[list[RunMetrics], Path], None]] = {
    "md": lambda runs, out: (out / "metrics.md").write_text(render_markdown(runs)),
    "csv": lambda runs, out: write_csv(runs, out / "metrics.csv"),
}
FORMATS = {"md": ["md"], "csv": ["csv"], "both": ["md", "csv"]}


def run(args: argparse.Namespace) -> int:
    runs = load_methods(args)
    out = args.out or args.run_dirs[0] / "metrics"
    out.mkdir(parents=True, exist_ok=True)
    for name in FORMATS[args.format]:
        TABLE_WRITERS[name](runs, out)
    for r in runs:
        write_per_seed(r, out / f"{file_stem(r.label)}_per_seed.json")
    pngs = [] if args.no_plots else write_plots(runs, out) + write_run_curves(args, out)
    if args.format == "csv":
        print((out / "metrics.csv").read_text(), end="")
    else:
        print(render_markdown(runs), end="")
    print(f"\nwrote {out} ({len(pngs)} PNG(s))")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except MetricsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    sys.exit(main())
