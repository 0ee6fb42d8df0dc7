"""Continual-learning metrics from success matrices (the CRL-VLA and Simple Recipe papers).

**Unit.** Success rates are fractions in [0, 1] in every function, array and JSON file of this module;
only the rendered tables (:func:`markdown_table` of a summary, the CSV of ``vlacrl-metrics``) show
percentage points (x100, one decimal), as the Simple Recipe tables do.

**Notation.** One seed of a continual run gives ``S``: a base row ``S_0`` (label ``base``, optional) and one
row ``S_k`` after each training stage k = 1..K (labels ``stage_<k-1>``); the columns are the evaluated
tasks. Trained tasks j = 1..T are the union of the stages' ``trained_tasks`` in the order they were first
trained; s(j) is the stage that first trained j. Held-out tasks H are the evaluated tasks never trained.
With one task per stage (the papers' setting) K = T, s(j) = j and every formula below is the papers' one.
Grouped stages (several tasks per stage) and the multitask oracle (K = 1, all tasks in one stage, so
``S_{s(j),j}`` is that single row) use the same formulas with s(j):

* AVG  = (1/T) sum_j S_{K,j}                                 (Simple Recipe; final success, trained tasks)
* FAR  = AVG                                                 (CRL-VLA's name for the same number)
* NBT  = mean_{j in O} (S_{s(j),j} - S_{K,j}),  O = {j : s(j) < K}   (forgetting, lower is better)
* BWT  = mean_{j in O} (S_{K,j} - S_{s(j),j}) = -NBT          (CRL-VLA; negative = forgetting)
* F    = mean_{j in O} (max_{k >= s(j)} S_{k,j} - S_{K,j})    (CRL-VLA forgetting, from the per-task best)
* FWT  = (1/T) sum_j (S_{s(j),j} - S^single_j)               ([INF] the Simple Recipe paper; S^single_j = success of
  a fresh adapter trained on task j alone; NaN without such a reference)
* ZS   = (1/|H|) sum_{h in H} S_{K,h}                        (final success on held-out tasks)
* dAVG = AVG - (1/T) sum_j S_{0,j},  dZS = ZS - (1/|H|) sum_h S_{0,h}   (v3 tables; need the base row)
* FT   = mean_{j : s(j) >= 2} (S_{s(j)-1,j} - b_j),  b_j = S_{0,j}   (CRL-VLA forward transfer; [INF] b_j is
  the base model's success on task j, so FT is NaN without a base row)

For single-task stages O = {1..T-1} (the papers' 1/(T-1) sums) and {j : s(j) >= 2} = {2..T}. O is empty
when T = 1 or when everything was trained in one stage (multitask): NBT, BWT and F are then NaN (the
papers print "-"). A metric is NaN ("n/a" in tables) whenever its inputs do not exist; :func:`notes`
says why. Cells evaluated as -1.0 ("no episodes") are an error when loading unless ``allow_missing``,
which turns them into NaN so the metrics that read them become NaN.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

NAN = float("nan")
SEED_FILE = re.compile(r"^success_matrix_seed(-?\d+)\.json$")
PLAIN_FILE = "success_matrix.json"


class MetricsError(ValueError):
    """Bad input for the metrics (no matrix, mismatched tasks, missing cells): one clear line."""


# ---------------------------------------------------------------------------------------------------- matrices
@dataclass(frozen=True)
class CRLMatrix:
    """The success matrix in the papers' layout, ready for the metric functions.

    Attributes:
        stages: [K, T+H] success (fractions) after stage k = 1..K (row k-1); columns = the T trained tasks in
            training order, then the H held-out tasks.
        stage_of: [T] int, 0-based stage index that first trained trained-column j (s(j) - 1).
        base: [T+H] base-model success in the same column order, or None without a base row.
        single_ref: [T] single-task reference S^single_j for the trained columns (NaN where unknown), or None.
        columns: the T+H task ids of the columns.
    """

    stages: np.ndarray
    stage_of: np.ndarray
    base: np.ndarray | None = None
    single_ref: np.ndarray | None = None
    columns: tuple[int, ...] = ()

    @property
    def n_trained(self) -> int:
        """T."""
        return int(self.stage_of.shape[0])

    @property
    def n_stages(self) -> int:
        """K."""
        return int(self.stages.shape[0])

    @property
    def final(self) -> np.ndarray:
        """[T+H] S_{K,.}, the row after the last stage."""
        return self.stages[-1]

    @property
    def diagonal(self) -> np.ndarray:
        """[T] S_{s(j),j}: success on each trained task right after the stage that trained it."""
        return self.stages[self.stage_of, np.arange(self.n_trained)]

    @property
    def old(self) -> np.ndarray:
        """[T] bool, j in O: trained before the last stage (the tasks that can be forgotten)."""
        return self.stage_of < self.n_stages - 1

    @property
    def held_out(self) -> np.ndarray:
        """[H] final success on the held-out columns."""
        return self.final[self.n_trained :]


def crl_matrix(
    full: np.ndarray,
    stage_of: Sequence[int],
    *,
    has_base: bool = True,
    single_ref: Sequence[float] | None = None,
) -> CRLMatrix:
    """A :class:`CRLMatrix` from a hand-made ``full`` [R, T+H] (row 0 = base when ``has_base``).

    The columns of ``full`` must already be trained tasks in order, then held-out tasks.
    """
    full = np.asarray(full, dtype=float)
    stages = full[1:] if has_base else full
    ref = None if single_ref is None else np.asarray(single_ref, dtype=float)
    return CRLMatrix(stages, np.asarray(stage_of, dtype=int), full[0] if has_base else None, ref,
                     tuple(range(full.shape[1])))  # fmt: skip


def _mean(values: np.ndarray) -> float:
    """Mean of ``values`` (NaN propagates); NaN for an empty array (no warning)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()) if values.size else NAN


# ----------------------------------------------------------------------------------------------- the metrics
def avg(m: CRLMatrix) -> float:
    """AVG = (1/T) sum_{j=1..T} S_{K,j}: final average success on the trained tasks (fraction)."""
    return _mean(m.final[: m.n_trained])


def far(m: CRLMatrix) -> float:
    """FAR = (1/T) sum_{i=1..T} R_{T,i} (CRL-VLA's final average success; equal to AVG)."""
    return avg(m)


def nbt(m: CRLMatrix) -> float:
    """NBT = mean_{j in O} (S_{s(j),j} - S_{K,j}) (negative backward transfer; lower is better; NaN if O empty)."""
    return _mean((m.diagonal - m.final[: m.n_trained])[m.old])


def bwt(m: CRLMatrix) -> float:
    """BWT = mean_{j in O} (S_{K,j} - S_{s(j),j}) (CRL-VLA backward transfer = -NBT; NaN if O empty)."""
    return _mean((m.final[: m.n_trained] - m.diagonal)[m.old])


def forgetting(m: CRLMatrix) -> float:
    """F = mean_{j in O} (max_{k >= s(j)} S_{k,j} - S_{K,j}) (CRL-VLA forgetting; >= 0; NaN if O empty)."""
    final = m.final[: m.n_trained]
    drops = [m.stages[s:, j].max() - final[j] for j, s in enumerate(m.stage_of) if m.old[j]]
    return _mean(np.asarray(drops, dtype=float))


def fwt(m: CRLMatrix) -> float:
    """FWT = (1/T) sum_j (S_{s(j),j} - S^single_j) ([INF] the Simple Recipe paper); NaN without a full reference."""
    if m.single_ref is None:
        return NAN
    return _mean(m.diagonal - m.single_ref)


def zs(m: CRLMatrix) -> float:
    """ZS = (1/|H|) sum_{h in H} S_{K,h}: final success on the held-out tasks (NaN when H is empty)."""
    return _mean(m.held_out)


def delta_avg(m: CRLMatrix) -> float:
    """dAVG = AVG - (1/T) sum_j S_{0,j} (gain over the base model on the trained tasks; NaN without base)."""
    return NAN if m.base is None else avg(m) - _mean(m.base[: m.n_trained])


def delta_zs(m: CRLMatrix) -> float:
    """dZS = ZS - (1/|H|) sum_h S_{0,h} (gain over the base model on the held-out tasks; NaN without base)."""
    return NAN if m.base is None else zs(m) - _mean(m.base[m.n_trained :])


def ft(m: CRLMatrix) -> float:
    """FT = mean_{j : s(j) >= 2} (S_{s(j)-1,j} - b_j), b_j = S_{0,j} ([INF] base success; NaN without base).

    S_{s(j)-1,j} is the success on task j just before the stage that trains it; with one task per stage this
    is CRL-VLA's 1/(T-1) sum_{i=2..T} (R_{i-1,i} - b_i).
    """
    later = m.stage_of >= 1
    if m.base is None or not later.any():
        return NAN
    columns = np.flatnonzero(later)
    before = m.stages[m.stage_of[later] - 1, columns]
    return _mean(before - m.base[columns])


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: the function, its table header, whether higher is better, its paper."""

    fn: Callable[[CRLMatrix], float]
    display: str
    higher_is_better: bool
    paper: str


METRICS: dict[str, MetricSpec] = {
    "AVG": MetricSpec(avg, "AVG", True, "Simple Recipe"),
    "dAVG": MetricSpec(delta_avg, "ΔAVG", True, "Simple Recipe"),
    "NBT": MetricSpec(nbt, "NBT", False, "Simple Recipe"),
    "FWT": MetricSpec(fwt, "FWT", True, "Simple Recipe"),
    "ZS": MetricSpec(zs, "ZS", True, "Simple Recipe"),
    "dZS": MetricSpec(delta_zs, "ΔZS", True, "Simple Recipe"),
    "FAR": MetricSpec(far, "FAR", True, "CRL-VLA"),
    "BWT": MetricSpec(bwt, "BWT", True, "CRL-VLA"),
    "FT": MetricSpec(ft, "FT", True, "CRL-VLA"),
    "F": MetricSpec(forgetting, "F", False, "CRL-VLA"),
}


def compute_metrics(m: CRLMatrix) -> dict[str, float]:
    """Every registered metric of one seed, in :data:`METRICS` order (fractions; NaN = undefined)."""
    return {name: float(spec.fn(m)) for name, spec in METRICS.items()}


def _note_reference(m: CRLMatrix) -> str | None:
    if m.single_ref is None:
        return "FWT n/a: no single-task reference S^single_j (pass --single-task-ref RUN_DIR|FILE.json)"
    missing = [m.columns[j] for j in np.flatnonzero(np.isnan(m.single_ref))]
    return f"FWT n/a: the single-task reference lacks task(s) {missing}" if missing else None


NOTE_RULES: tuple[Callable[[CRLMatrix], str | None], ...] = (
    _note_reference,
    lambda m: None if m.base is not None else "ΔAVG, ΔZS, FT n/a: no base-model row (run with crl.eval_base=true)",
    lambda m: "ZS, ΔZS n/a: no held-out task was evaluated" if m.n_trained == len(m.final) else None,
    lambda m: None if m.old.any() else "NBT, BWT, F n/a: no task was trained before the last stage (T=1 or multitask)",
    lambda m: None if (m.stage_of >= 1).any() else "FT n/a: every task was trained in the first stage",
)


def notes(m: CRLMatrix) -> list[str]:
    """Why some metrics of ``m`` are NaN (one line each)."""
    return [text for rule in NOTE_RULES if (text := rule(m))]


# ------------------------------------------------------------------------------------------------- one seed
NOT_EVALUATED = -1.0  # the success matrix's marker of a cell that was not evaluated


def _check_cells(where: str, tasks: list[int], labels: list[str], success: np.ndarray) -> None:
    """Success fractions in [0, 1] (or the not-evaluated marker -1), distinct task columns and row labels."""
    bad = ~(((success >= 0.0) & (success <= 1.0)) | (success == NOT_EVALUATED))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise MetricsError(f"{where}: success {success[row, col]!r} of row {labels[row]!r}, task {tasks[col]} is not a "
                           f"fraction in [0, 1] (or {NOT_EVALUATED}: not evaluated)")  # fmt: skip
    for name, values in (("task", tasks), ("row label", labels)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise MetricsError(f"{where}: {name}(s) {repeated} appear more than once")


@dataclass
class SeedMatrix:
    """One seed's ``success_matrix*.json`` as written by ``vlacrl.runners.continual.SuccessMatrix``.

    Attributes:
        tasks: the J evaluated task ids (columns, file order).
        labels: the R row labels (``base``, ``stage_0``, ...).
        trained_tasks: per row, the tasks its stage trained (``[]`` for the base row).
        success: [R, J] success fractions; NaN where the file holds -1.0 (not evaluated).
        seed: from ``success_matrix_seed<S>.json`` (None for a plain ``success_matrix.json``).
        source: the file it was read from ("" when built in memory).
    """

    tasks: list[int]
    labels: list[str]
    trained_tasks: list[list[int]]
    success: np.ndarray
    seed: int | None = None
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, seed: int | None = None, source: str = "") -> SeedMatrix:
        """Parse ``{"tasks": [...], "rows": [{"label", "trained_tasks", "success"}]}`` (-1.0 becomes NaN)."""
        where = source or "success matrix"
        try:
            tasks = [int(t) for t in data["tasks"]]
            rows = list(data["rows"])
            labels = [str(r["label"]) for r in rows]
            trained = [[int(t) for t in r.get("trained_tasks", [])] for r in rows]
            success = np.array([[float(v) for v in r["success"]] for r in rows], dtype=float)
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricsError(f"{where}: not a success matrix ({type(exc).__name__}: {exc})") from None
        if not rows:
            raise MetricsError(f"{where}: no evaluation rows yet")
        if success.shape != (len(rows), len(tasks)):
            raise MetricsError(f"{where}: every row needs one success value per task ({len(tasks)} tasks)")
        _check_cells(where, tasks, labels, success)
        success[success == NOT_EVALUATED] = np.nan
        return cls(tasks, labels, trained, success, seed, source)

    @property
    def has_base(self) -> bool:
        """Whether a ``base`` row exists."""
        return "base" in self.labels

    @property
    def stage_rows(self) -> list[int]:
        """Indices of the rows after a training stage (every row but ``base``)."""
        return [i for i, label in enumerate(self.labels) if label != "base"]

    @property
    def trained_order(self) -> list[int]:
        """Trained tasks in the order they were first trained (union over the stage rows)."""
        return list(dict.fromkeys(t for i in self.stage_rows for t in self.trained_tasks[i]))

    @property
    def held_out(self) -> list[int]:
        """Evaluated tasks that no stage trained."""
        trained = set(self.trained_order)
        return [t for t in self.tasks if t not in trained]

    def missing_cells(self) -> list[tuple[str, int]]:
        """(row label, task id) of every cell without an evaluation."""
        return [(self.labels[r], self.tasks[c]) for r, c in zip(*np.nonzero(np.isnan(self.success)))]

    def to_crl(self, reference: Mapping[int, float] | None = None) -> CRLMatrix:
        """This seed in the papers' layout; ``reference`` = S^single per task id (None: FWT is NaN)."""
        stage_rows = self.stage_rows
        if not stage_rows:
            raise MetricsError(f"{self.source or 'success matrix'}: no training stage evaluated yet (only 'base')")
        order = self.trained_order
        unevaluated = [t for t in order if t not in self.tasks]
        if unevaluated:
            raise MetricsError(f"{self.source or 'success matrix'}: trained task(s) {unevaluated} were never evaluated")
        first_stage = {}
        for k, row in enumerate(stage_rows):
            for t in self.trained_tasks[row]:
                first_stage.setdefault(t, k)
        columns = order + self.held_out
        index = [self.tasks.index(t) for t in columns]
        base = self.success[self.labels.index("base"), index] if self.has_base else None
        ref = None if reference is None else np.array([reference.get(t, NAN) for t in order], dtype=float)
        stage_of = np.array([first_stage[t] for t in order], dtype=int)
        return CRLMatrix(self.success[np.ix_(stage_rows, index)], stage_of, base, ref, tuple(columns))


def matrix_files(run_dir: Path) -> list[tuple[int | None, Path]]:
    """``(seed, path)`` of the run's matrices: ``success_matrix_seed<S>.json`` by seed, else ``success_matrix.json``."""
    seeded = sorted((int(m.group(1)), p) for p in run_dir.iterdir() if (m := SEED_FILE.match(p.name)))
    if seeded:
        return [(seed, path) for seed, path in seeded]
    plain = run_dir / PLAIN_FILE
    return [(None, plain)] if plain.is_file() else []


def load_run(run_dir: str | Path, *, allow_missing: bool = False) -> list[SeedMatrix]:
    """Every seed's success matrix in ``run_dir`` (a ``vlacrl-crl`` ``runner.logger.log_path``).

    Raises:
        MetricsError: not a directory, no matrix file, a malformed file, seeds that evaluate or train
            different task sets, or a -1.0 cell (unless ``allow_missing``: then it stays NaN).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MetricsError(f"{run_dir}: not a directory")
    files = matrix_files(run_dir)
    if not files:
        raise MetricsError(f"{run_dir}: no success_matrix_seed<S>.json or {PLAIN_FILE} (not a vlacrl-crl log_path?)")
    seeds = [_read_matrix(path, seed) for seed, path in files]
    if not allow_missing:
        for matrix in seeds:
            _check_complete(matrix)
    check_same_tasks({str(run_dir): seeds})
    return seeds


def _read_matrix(path: Path, seed: int | None) -> SeedMatrix:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MetricsError(f"{path}: cannot read the success matrix ({exc})") from None
    return SeedMatrix.from_dict(data, seed=seed, source=str(path))


def _check_complete(matrix: SeedMatrix) -> None:
    missing = matrix.missing_cells()
    if missing:
        cells = ", ".join(f"{label}/task_{task}" for label, task in missing[:6]) + (" ..." if len(missing) > 6 else "")
        raise MetricsError(f"{matrix.source}: {len(missing)} cell(s) not evaluated (-1): {cells}; "
                           "re-run those evaluations or pass --allow-missing")  # fmt: skip


def _task_sets(matrix: SeedMatrix) -> tuple[list[int], list[int]]:
    return sorted(matrix.tasks), sorted(matrix.trained_order)


def check_same_tasks(groups: Mapping[str, Sequence[SeedMatrix]]) -> None:
    """Every matrix of every group evaluates the same task set and trains the same task set.

    Raises:
        MetricsError: "mismatched task lists" naming the first two that differ.
    """
    pairs = [(f"{name} ({m.source or 'seed ' + str(m.seed)})", m) for name, ms in groups.items() for m in ms]
    if not pairs:
        return
    first_name, first = pairs[0]
    for name, other in pairs[1:]:
        (evaluated, trained), (evaluated2, trained2) = _task_sets(first), _task_sets(other)
        if (evaluated, trained) != (evaluated2, trained2):
            raise MetricsError(f"mismatched task lists: {first_name} evaluates {evaluated} and trains {trained}, "
                               f"but {name} evaluates {evaluated2} and trains {trained2}")  # fmt: skip


def mean_matrix(seeds: Sequence[SeedMatrix]) -> SeedMatrix:
    """Cell-wise mean over seeds with identical rows (labels and trained tasks); else the first seed.

    Columns follow the first seed's task order; NaN cells are ignored unless every seed lacks them.
    """
    first = seeds[0]
    same_rows = all(s.labels == first.labels and s.trained_tasks == first.trained_tasks for s in seeds)
    if len(seeds) == 1 or not same_rows:
        return first
    stack = np.stack([s.success[:, [s.tasks.index(t) for t in first.tasks]] for s in seeds])
    valid = ~np.isnan(stack)
    counts = valid.sum(axis=0)
    mean = np.where(counts > 0, np.where(valid, stack, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan)
    return SeedMatrix(list(first.tasks), list(first.labels), [list(t) for t in first.trained_tasks], mean,
                      None, f"mean of {len(seeds)} seeds")  # fmt: skip


# ------------------------------------------------------------------------------------- single-task reference
def single_task_reference(paths: Iterable[str | Path]) -> dict[int, float]:
    """S^single per task id for FWT, from run dirs and/or JSON files (fractions).

    A run dir contributes, per seed, ``S_{s(j),j}`` of each trained task (the success right after the stage
    that trained it: single-task runs, or a run whose stages each start from the base model), averaged over
    its seeds. A ``.json`` file is a mapping ``{"<task id>": success}``. A task found in several sources gets
    the mean of their values.
    """
    values: dict[int, list[float]] = {}
    for path in map(Path, paths):
        for task, value in _reference_from(path).items():
            values.setdefault(task, []).append(value)
    return {task: float(np.mean(v)) for task, v in sorted(values.items())}


def _reference_from(path: Path) -> dict[int, float]:
    if path.is_dir():
        per_task: dict[int, list[float]] = {}
        for seed in load_run(path):
            m = seed.to_crl()
            for column, value in zip(m.columns, m.diagonal):
                per_task.setdefault(column, []).append(float(value))
        return {task: float(np.mean(v)) for task, v in per_task.items()}
    try:
        mapping = {int(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise MetricsError(f"{path}: not a run dir nor a JSON mapping task id -> success ({exc})") from None
    if any(not 0.0 <= v <= 1.0 for v in mapping.values()):
        raise MetricsError(f"{path}: single-task success values must be fractions in [0, 1]")
    return mapping


# ---------------------------------------------------------------------------------------- runs and summaries
@dataclass
class RunMetrics:
    """The metrics of one method: per-seed values (fractions) and why some are NaN."""

    label: str
    run_dirs: list[str]
    seeds: list[SeedMatrix]
    per_seed: list[dict[str, float]]
    notes: list[str] = field(default_factory=list)


def evaluate_run(
    label: str, seeds: Sequence[SeedMatrix], reference: Mapping[int, float] | None = None, run_dirs=()
) -> RunMetrics:
    """:func:`compute_metrics` for every seed; the notes of all seeds, deduplicated in order."""
    matrices = [s.to_crl(reference) for s in seeds]
    all_notes = list(dict.fromkeys(text for m in matrices for text in notes(m)))
    return RunMetrics(label, [str(d) for d in run_dirs], list(seeds), [compute_metrics(m) for m in matrices],
                      all_notes)  # fmt: skip


@dataclass(frozen=True)
class Stat:
    """Mean ± standard error over the seeds where the value is defined (``n`` of them)."""

    mean: float
    se: float
    n: int


def mean_se(values: Iterable[float]) -> Stat:
    """Mean and s.e. = std(ddof=1) / sqrt(n) of the finite values; n = 1 gives s.e. NaN, n = 0 mean NaN."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    n = int(finite.size)
    mean = float(finite.mean()) if n else NAN
    se = float(finite.std(ddof=1) / math.sqrt(n)) if n > 1 else NAN
    return Stat(mean, se, n)


def summarize(runs: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, dict[str, Stat]]:
    """Per method (key), per metric: :class:`Stat` across that method's per-seed metric dicts."""
    return {label: {name: mean_se(seed[name] for seed in per_seed) for name in METRICS}
            for label, per_seed in runs.items()}  # fmt: skip


# --------------------------------------------------------------------------------------------------- tables
def format_stat(stat: Stat, n_seeds: int, scale: float = 100.0) -> str:
    """``"81.2 ± 0.4"`` in percentage points (``scale`` 100); ``n/a`` when undefined; ``(n=k)`` when fewer seeds."""
    if not math.isfinite(stat.mean):
        return "n/a"
    se = f"{_rounded(stat.se * scale, 1):.1f}" if math.isfinite(stat.se) else "n/a"
    suffix = f" (n={stat.n})" if stat.n != n_seeds else ""
    return f"{_rounded(stat.mean * scale, 1):.1f} ± {se}{suffix}"


def _rounded(value: float, digits: int) -> float:
    """``value`` rounded, without a negative zero (so float noise never prints as "-0.0")."""
    return round(value, digits) + 0.0


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (cells rendered with ``str``)."""
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def metric_header(name: str) -> str:
    """``"AVG ↑"``: the display name and the better direction."""
    spec = METRICS[name]
    return f"{spec.display} {'↑' if spec.higher_is_better else '↓'}"


def comparison_rows(runs: Sequence[RunMetrics]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the method comparison: method, seeds, then "mean ± s.e." (% points) per metric."""
    summary = summarize({r.label: r.per_seed for r in runs})
    columns = ["method", "seeds", *[metric_header(name) for name in METRICS]]
    rows = [[r.label, str(len(r.per_seed)), *[format_stat(summary[r.label][n], len(r.per_seed)) for n in METRICS]]
            for r in runs]  # fmt: skip
    return columns, rows


def comparison_csv_rows(runs: Sequence[RunMetrics]) -> tuple[list[str], list[list[Any]]]:
    """CSV columns ``method, seeds, <M>_mean, <M>_se`` (percentage points, empty = undefined) and rows."""
    summary = summarize({r.label: r.per_seed for r in runs})
    columns = ["method", "seeds", *[f"{name}_{part}" for name in METRICS for part in ("mean", "se")]]
    rows = []
    for r in runs:
        cells = [(summary[r.label][n].mean, summary[r.label][n].se) for n in METRICS]
        rows.append([r.label, len(r.per_seed), *[_pct(v) for pair in cells for v in pair]])
    return columns, rows


def _pct(value: float) -> str:
    return str(_rounded(value * 100, 6)) if math.isfinite(value) else ""


def matrix_table(matrix: SeedMatrix) -> tuple[list[str], list[list[str]]]:
    """The success matrix as table columns/rows: ``after``, trained tasks (in order), held-out ones marked ``*``.

    Cells in percent with one decimal; ``-`` for a cell without evaluation.
    """
    trained = set(matrix.trained_order)
    columns = matrix.trained_order + [t for t in matrix.tasks if t not in trained]
    index = [matrix.tasks.index(t) for t in columns if t in matrix.tasks]
    header = ["after", *[f"task_{t}" + ("" if t in trained else "*") for t in columns if t in matrix.tasks]]
    rows = [[label, *[f"{v * 100:.1f}" if math.isfinite(v) else "-" for v in matrix.success[r, index]]]
            for r, label in enumerate(matrix.labels)]  # fmt: skip
    return header, rows
