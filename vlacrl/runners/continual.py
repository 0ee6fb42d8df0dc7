"""The continual sequence: train stage after stage with a CRL method, evaluate after each, keep a success matrix.

Per stage (one task, or all tasks for multitask): the method's ``train_overrides`` → a training run in
``<root>/<stage dir>`` (resumable on its own) → the method's ``finish_task`` → an evaluation of the
evaluated tasks with the method's ``eval_overrides`` → one row of the success matrix
(``success_matrix.json`` / ``.csv`` in the root, ``eval/env_info/task_<k>_success`` logged at the
sequence step) → ``sequence_state.json``. Restarting with ``runner.resume=auto`` skips finished stages and
resumes the interrupted one at its last checkpoint.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from vlacrl.config.tasks import parse_task_range
from vlacrl.config.validate import ConfigError
from vlacrl.crl.base import CRLMethod, StageRecord
from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.registry import simulator_for, suite_task_ids
from vlacrl.runners.checkpoint import write_text_atomic
from vlacrl.runners.continuation import earlier_stages, write_stage_record

logger = logging.getLogger(__name__)

STATE_FILE = "sequence_state_seed{seed}.json"
MATRIX_FILE = "success_matrix_seed{seed}"


@dataclass
class SuccessMatrix:
    """Rows: evaluations after each stage (row "base" first when the base model was evaluated)."""

    tasks: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, label: str, trained_tasks: list[int], metrics: dict[str, float]) -> list[float]:
        success = [float(metrics.get(f"eval/env_info/task_{t}_success", -1.0)) for t in self.tasks]
        self.rows.append({"label": label, "trained_tasks": trained_tasks, "success": success})
        return success

    def write(self, root: Path, stem: str = "success_matrix") -> None:
        (root / f"{stem}.json").write_text(json.dumps(asdict(self), indent=2))
        with open(root / f"{stem}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["after", *[f"task_{t}" for t in self.tasks]])
            for row in self.rows:
                writer.writerow([row["label"], *row["success"]])


@dataclass
class ContinualSettings:
    """``crl.*`` keys of the sequence (method-specific keys live beside them)."""

    tasks: list[int]
    eval_tasks: list[int] | None  # None: every task of the suite
    eval_base: bool
    stage_dir: str  # template with {tasks} (ids joined by _), {task} (first id), {seed}
    seed: int
    eval_overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys applied to every evaluation
    first_task: int | None = None  # the suite's first task: a later start continues from task k-1 (continuation.py)

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> ContinualSettings:
        crl = cfg.get("crl") or {}
        tasks = _checked_ids(cfg.env.train, parse_task_range(crl.get("tasks", 0)))
        eval_tasks = crl.get("eval_tasks")
        eval_tasks = None if eval_tasks is None else _checked_ids(cfg.env.eval, parse_task_range(eval_tasks))
        extra = crl.get("eval_overrides") or {}
        extra = flat_keys(OmegaConf.to_container(extra, resolve=True) if isinstance(extra, DictConfig) else extra)
        first = crl.get("first_task")
        return cls(tasks, eval_tasks, bool(crl.get("eval_base", False)),
                   str(crl.get("stage_dir", "task_{tasks}_seed{seed}")), int(crl.get("seed", 1234)), extra,
                   None if first is None else int(first))  # fmt: skip


class StageOutputs(dict):
    """A planned stage's method outputs (``StageRecord.extra``), known only once it ran: every key reads as a
    placeholder naming the key and the stage, so the plan shows e.g. ``crl.previous_fisher_path=<fisher_path of
    stage_0>``."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def __missing__(self, key: str) -> str:
        return f"<{key} of {self.stage}>"

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


def _known(make, *args) -> tuple[dict[str, Any], str]:
    """``make(*args)``'s overrides, or ``({}, why)`` when they depend on outputs of stages that have not run yet."""
    try:
        return make(*args), ""
    except (ValueError, KeyError) as exc:
        return {}, " ".join(str(exc).split())


def flat_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"algorithm": {"eval_rollout_epoch": 40}}`` → ``{"algorithm.eval_rollout_epoch": 40}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _checked_ids(env_cfg, ids: list[int]) -> list[int]:
    """``ids`` checked against the suite of one ``env.<split>`` section (its simulator's task count)."""
    try:
        return simulator_for(env_cfg).validate_task_ids(str(env_cfg.task_suite_name), ids)
    except EnvConfigError as exc:
        raise ConfigError(str(exc)) from None


def with_overrides(cfg: DictConfig, overrides: dict[str, Any]) -> DictConfig:
    """A copy of ``cfg`` with dotted-key overrides applied (keys may be new)."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(out):
        for key, value in overrides.items():
            OmegaConf.update(out, key, value, force_add=True)
    return out


def check_eval_envs(cfg: DictConfig, num_eval_tasks: int) -> None:
    """Every evaluated task gets the same number of eval episodes on every env rank (the eval reset-state
    sampler's rule): ``env.eval.num_envs`` (the total over env workers) must split into equal per-task
    counts, each divisible by the env world size. Checked before the first stage starts."""
    from vlacrl.distributed.placement import PlacementError, resolve_placement
    from vlacrl.runners.session import local_gpu_count

    if "cluster" not in cfg or cfg.env.eval.get("num_envs") is None:
        return  # a partial config (library use): each evaluation validates its full config itself
    if cfg.cluster.get("address"):
        return  # the GPUs (and so the env world size) are known only after joining the cluster
    try:
        placement = resolve_placement(
            cfg.cluster.component_placement, local_gpu_count(), int(cfg.cluster.get("cpu_world_size", 1))
        )
    except PlacementError:
        return  # reported with its own message when the first stage validates its config
    total, world = int(cfg.env.eval.num_envs), placement["env"].world_size
    if total % num_eval_tasks or (total // num_eval_tasks) % world:
        raise ConfigError(
            f"env.eval.num_envs ({total}) must give each of the {num_eval_tasks} evaluated tasks the same number "
            f"of envs, a multiple of the env world size ({world}): set crl.eval_tasks or env.eval.num_envs"
        )


class ContinualRunner:
    """Runs the sequence of stages of one method; see the module docstring."""

    def __init__(self, cfg: DictConfig, method: CRLMethod, train_fn, eval_fn, metric_logger=None):
        self.cfg, self.method = cfg, method
        self.train_fn, self.eval_fn, self.metric_logger = train_fn, eval_fn, metric_logger
        self.settings = ContinualSettings.from_cfg(cfg)
        self.root = Path(str(cfg.runner.logger.log_path)).resolve()
        self.eval_tasks = self.settings.eval_tasks or suite_task_ids(cfg.env.eval)
        check_eval_envs(cfg, len(self.eval_tasks))
        self.history: list[StageRecord] = []
        self.matrix = SuccessMatrix(self.eval_tasks)
        self.plan_notes: list[str] = []  # what plan() found besides its rows (continuation, its problems)

    def stage_name(self, tasks: list[int]) -> str:
        joined = "_".join(str(t) for t in tasks)
        return self.settings.stage_dir.format(tasks=joined, task=tasks[0], seed=self.settings.seed)

    # -- persistence -------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE.format(seed=self.settings.seed)

    @property
    def matrix_stem(self) -> str:
        return MATRIX_FILE.format(seed=self.settings.seed)

    def _save_state(self) -> None:
        state = {"history": [asdict(r) for r in self.history], "matrix": asdict(self.matrix),
                 "method": self.method.state_dict()}  # fmt: skip
        write_text_atomic(self.state_path, json.dumps(state, indent=2))  # a kill never leaves half a state
        self.matrix.write(self.root, self.matrix_stem)

    def _load_state(self) -> None:
        path = self.state_path
        if str(self.cfg.runner.get("resume", "auto")) == "disable" or not path.exists():
            return
        state = json.loads(path.read_text())
        self.history = [StageRecord(**r) for r in state["history"]]
        self.matrix = SuccessMatrix(state["matrix"]["tasks"], state["matrix"]["rows"])
        self.method.load_state_dict(state.get("method", {}))
        logger.info("continuing the sequence after %d finished stage(s)", len(self.history))

    # -- the sequence ------------------------------------------------------------------------------------
    def eval_config(self, overrides: dict[str, Any]) -> DictConfig:
        """The config of one evaluation: the stage's overrides, then ``crl.eval_overrides`` (the reference
        evaluates every stage with the ``_eval`` twin's settings: docs/reproducing.md), on the evaluated tasks."""
        return with_overrides(
            self.cfg, {**overrides, **self.settings.eval_overrides, "env.eval.fixed_task_ids": self.eval_tasks}
        )

    def episodes_per_task(self, eval_cfg: DictConfig) -> int:
        """Evaluation episodes of each evaluated task: eval epochs x the envs each task gets."""
        envs = int(eval_cfg.env.eval.num_envs) // len(self.eval_tasks)
        return int(eval_cfg.algorithm.eval_rollout_epoch) * envs

    def _evaluate(self, label: str, trained: list[int], overrides: dict[str, Any], out_dir: Path) -> list[float]:
        eval_cfg = self.eval_config(overrides)
        metrics = self.eval_fn(eval_cfg, out_dir)
        row = self.matrix.add(label, trained, metrics)
        if self.metric_logger is not None:
            step = len(self.matrix.rows) - 1
            self.metric_logger.log({k: v for k, v in metrics.items() if k.startswith("eval/")}, step=step)
            self._log_matrix(step)
        return row

    def _log_matrix(self, step: int) -> None:
        """The matrix so far as a markdown table and a heatmap image (a failure here only warns)."""
        try:
            from vlacrl.metrics.crl_metrics import SeedMatrix, matrix_table
            from vlacrl.metrics.plots import heatmap_array

            matrix = SeedMatrix.from_dict(asdict(self.matrix), seed=self.settings.seed)
            self.metric_logger.log_table("crl/success_matrix", *matrix_table(matrix), step=step)
            self.metric_logger.log_image("crl/success_matrix_heatmap", heatmap_array(matrix), step=step)
        except Exception as exc:  # noqa: BLE001 - plots must never end a sequence
            logger.warning("could not log the success matrix table/heatmap: %s: %s", type(exc).__name__, exc)

    def earlier_stages(self, stages: list[list[int]]) -> list[StageRecord]:
        """The finished stages of tasks before this invocation's first one, when the state does not have them
        and ``crl.first_task`` says the sequence continues (:mod:`vlacrl.runners.continuation`)."""
        if self.history or not stages or self.settings.first_task is None:
            return []
        explicit = bool(OmegaConf.select(self.cfg, "actor.model.lora_path"))
        return earlier_stages(self.settings.first_task, stages[0], lambda t: self.root / self.stage_name(t), explicit)

    def prepare(self) -> None:
        """Load the sequence state and the earlier stages a later start continues after (a missing task k-1 is a
        :class:`ConfigError` here, before anything is written or started). :meth:`run` calls it when needed."""
        self._load_state()
        self.history.extend(self.earlier_stages(self.method.task_schedule(self.settings.tasks)))
        self._prepared = True

    def run(self) -> SuccessMatrix:
        if not getattr(self, "_prepared", False):
            self.prepare()
        stages = self.method.task_schedule(self.settings.tasks)
        self.root.mkdir(parents=True, exist_ok=True)
        if self.history:
            logger.info("continuing after %s", ", ".join(f"tasks {r.task_ids} ({r.run_dir})" for r in self.history))
        if self.settings.eval_base and not self.matrix.rows:
            self._evaluate("base", [], {}, self.root / "eval_base")
            self._save_state()
        done = [r.task_ids for r in self.history]
        for position, tasks in enumerate(stages):
            if tasks in done:  # finished earlier (this invocation resumed, or an earlier one ran it)
                continue
            logger.info("stage %d/%d of this invocation", position + 1, len(stages))
            self._run_stage(len(self.history), tasks)
        return self.matrix

    def _stage_overrides(self, index: int, tasks: list[int], history: list[StageRecord]) -> dict[str, Any]:
        run_dir = self.root / self.stage_name(tasks)
        overrides = {"env.fixed_task_ids": tasks, "runner.logger.log_path": str(run_dir),
                     "runner.logger.experiment_name": run_dir.name}  # fmt: skip
        overrides.update(self.method.train_overrides(index, history))
        return overrides

    def plan(self) -> list[dict[str, Any]]:
        """What :meth:`run` would do, without running anything: per evaluation row its label, trained tasks,
        training overrides, evaluation config overrides and episodes per task. Later stages see placeholder
        records of the earlier ones (their adapter where it will be written; method outputs such as EWC's
        Fisher file, known only after the stage ran, as ``<key of stage_k>`` placeholders)."""
        rows = []
        self._load_state()  # read only: a sequence recorded in the log root continues where it stopped
        if self.settings.eval_base and not self.matrix.rows:
            rows.append({"label": "base", "tasks": [], "train": {}, "eval": self.settings.eval_overrides,
                         "pending": "", "episodes_per_task": self.episodes_per_task(self.eval_config({}))})  # fmt: skip
        schedule = self.method.task_schedule(self.settings.tasks)
        self.plan_notes = []
        try:
            history: list[StageRecord] = [*self.history, *self.earlier_stages(schedule)]
        except ConfigError as exc:
            history = []
            self.plan_notes.append(f"problem: {exc} (a real run stops here)")
        self.plan_notes += [f"continues after tasks {r.task_ids}: {r.adapter_dir}" for r in history]
        steps = int(self.cfg.runner.max_epochs)
        for tasks in schedule:
            if tasks in [r.task_ids for r in history]:
                continue  # finished earlier in this log root (listed in the notes)
            index = len(history)
            run_dir = self.root / self.stage_name(tasks)
            overrides, train_pending = _known(self._stage_overrides, index, tasks, history)
            adapter = str(run_dir / "checkpoints" / f"global_step_{steps}" / "actor")
            record = StageRecord(index, tasks, str(run_dir), adapter, StageOutputs(f"stage_{index}"))
            evaluation, eval_pending = _known(self.method.eval_overrides, record, history)
            eval_cfg = self.eval_config({**overrides, **evaluation})
            rows.append({"label": f"stage_{index}", "tasks": tasks, "train": overrides,
                         "eval": {**evaluation, **self.settings.eval_overrides},
                         "pending": "; ".join(p for p in (train_pending, eval_pending) if p),
                         "episodes_per_task": self.episodes_per_task(eval_cfg)})  # fmt: skip
            history.append(record)
        return rows

    def _run_stage(self, index: int, tasks: list[int]) -> None:
        """Train ``tasks`` as the ``index``-th stage of the sequence (history = every finished stage)."""
        run_dir = self.root / self.stage_name(tasks)
        overrides = self._stage_overrides(index, tasks, self.history)
        logger.info("sequence stage %d: tasks %s -> %s", index, tasks, run_dir)
        result = self.train_fn(with_overrides(self.cfg, overrides))
        adapter = str(result.checkpoint / "actor") if result.checkpoint else None
        record = StageRecord(index, tasks, str(run_dir), adapter, dict(result.method_record))
        eval_overrides = {**overrides, **self.method.eval_overrides(record, self.history)}
        self._evaluate(f"stage_{index}", tasks, eval_overrides, run_dir / "eval")
        self.history.append(record)
        write_stage_record(record)
        self._save_state()
