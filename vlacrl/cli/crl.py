"""``vlacrl-crl``: a continual-learning sequence — train task after task with a CRL method (Hydra main).

    vlacrl-crl crl=seq_ft crl.tasks=[0,1] crl.eval_tasks=[0,1]          # CPU default, 2 tasks
    vlacrl-crl --config-name crl_experiment/libero_spatial_grpo_openvlaoft_spatial crl=ewc crl.tasks="'0,9'"

``crl.tasks``: k, 'a,b' (the range a..b) or a list; ``crl.eval_tasks``: tasks evaluated after every stage
(default: all tasks of the suite); ``crl.eval_base``: also evaluate the base model first (row "base").
Writes ``success_matrix_seed<S>.json``/``.csv`` and one run dir per stage under ``runner.logger.log_path``;
``runner.resume=auto`` continues an interrupted sequence at the right stage and step. ``crl.dry_run=True`` prints
the plan (per stage: training overrides, evaluation overrides, ``episodes per task: N``) and exits without Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vlacrl.cli.common import hydra_entry


def preflight(cfg: DictConfig) -> None:
    """The checks of the first stage (see vlacrl.config.validate), before the sequence writes anything: bad input
    ends with one line and no output dir. Joining a cluster (``cluster.address``), its GPUs are known only after
    joining, so only the method's checks run here; each stage validates its own config again before Ray starts."""
    from vlacrl.config.validate import check_method
    from vlacrl.runners.session import local_gpu_count, validate_and_prepare

    if cfg.cluster.get("address"):
        check_method(cfg)
        return
    validate_and_prepare(cfg, local_gpu_count())


def _show(overrides: dict | None) -> str:
    if not overrides:
        return "-"
    return " ".join(f"{key}={value}" for key, value in overrides.items())


def print_plan(cfg: DictConfig) -> int:
    """``crl.dry_run=True``: validate (a problem is reported, not fatal), then print every evaluation row's
    training and evaluation overrides and episodes per task; nothing is written and Ray never starts."""
    from vlacrl.config.validate import ConfigError, validate_config
    from vlacrl.crl.registry import build_method
    from vlacrl.runners.continual import ContinualRunner
    from vlacrl.runners.session import local_gpu_count

    try:
        validate_config(cfg, local_gpu_count())
        status = "ok"
    except ConfigError as exc:
        status = f"{exc} (a real run stops here)"
    method = build_method(OmegaConf.to_container(cfg, resolve=True))
    runner = ContinualRunner(cfg, method, None, None)
    print(f"dry run: crl={method.name}, suite {cfg.env.train.task_suite_name}, log dir {runner.root}")
    print(f"validation: {status}")
    rows = runner.plan()
    for note in runner.plan_notes:
        print(note)
    for row in rows:
        print(f"{row['label']}: trains tasks {row['tasks'] or '-'}; evaluates tasks {runner.eval_tasks}")
        print(f"  training overrides: {_show(row['train'])}")
        print(f"  evaluation overrides: {_show(row['eval'])}")
        if row["pending"]:
            print(f"  set from the outputs of earlier stages when it runs: {row['pending']}")
        print(f"  episodes per task: {row['episodes_per_task']}")
    return 0


def run_sequence(cfg: DictConfig) -> int:
    from vlacrl.crl.registry import build_method
    from vlacrl.metrics.loggers import MetricLogger
    from vlacrl.runners.continual import ContinualRunner
    from vlacrl.runners.stage import run_evaluation, run_training

    if cfg.crl.get("dry_run", False):
        return print_plan(cfg)
    preflight(cfg)
    method = build_method(OmegaConf.to_container(cfg, resolve=True))
    root = Path(str(cfg.runner.logger.log_path))
    runner = ContinualRunner(cfg, method, run_training, run_evaluation)
    runner.prepare()  # where the sequence continues from: a problem ends here, before the log dir exists
    metric_logger = runner.metric_logger = MetricLogger(["tensorboard"], root / "sequence")
    try:
        matrix = runner.run()
    finally:
        metric_logger.close()
    print(f"method {method.name}: {len(matrix.rows)} evaluation row(s) over tasks {matrix.tasks}")
    for row in matrix.rows:
        print(f"  after {row['label']:>10}: " + " ".join(f"{s:.2f}" for s in row["success"]))
    print(f"success matrix: {runner.root / (runner.matrix_stem + '.json')}")
    print(json.dumps({"success_matrix": [r["success"] for r in matrix.rows]}))
    return 0


main = hydra_entry(run_sequence)


if __name__ == "__main__":
    main()
