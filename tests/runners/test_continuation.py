"""A sequence that starts after the suite's first task continues from task k-1's run, as the reference's launchers
(``crl.first_task``; vlacrl/runners/continuation.py). The runner runs with stand-ins for the train and evaluation
functions here (what they receive is the subject); real stages are in test_crl_sequences.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.config.validate import ConfigError
from vlacrl.crl.registry import build_method
from vlacrl.runners.continual import ContinualRunner
from vlacrl.runners.continuation import STAGE_RECORD_FILE
from vlacrl.runners.stage import TrainResult


def finished_stage(root: Path, task: int, step: int = 2, record: dict | None = None) -> Path:
    """A stage dir as a finished run leaves it: a complete checkpoint (and, when given, its stage record)."""
    run_dir = root / f"task_{task}_seed1234"
    actor = run_dir / "checkpoints" / f"global_step_{step}" / "actor"
    actor.mkdir(parents=True)
    (actor.parent / "COMPLETE").write_text("ok\n")
    if record is not None:
        (run_dir / STAGE_RECORD_FILE).write_text(json.dumps(record))
    return actor


def runner(tmp_path: Path, *overrides: str):
    cfg = compose("cpu_tiny", [f"runner.logger.log_path={tmp_path}", "crl.first_task=0", *overrides])
    trained: list[dict] = []

    def train(stage_cfg):
        trained.append(OmegaConf.to_container(stage_cfg, resolve=True))
        log = Path(stage_cfg.runner.logger.log_path)
        checkpoint = finished_stage(log.parent, int(stage_cfg.env.fixed_task_ids[0])).parent
        return TrainResult(log, 2, checkpoint, method_record={"fisher_path": str(log / "ewc_data.pt")})

    def evaluate(eval_cfg, out_dir):
        return {f"eval/env_info/task_{t}_success": 0.5 for t in eval_cfg.env.eval.fixed_task_ids}

    method = build_method(OmegaConf.to_container(cfg, resolve=True))
    return ContinualRunner(cfg, method, train, evaluate), trained


def test_a_later_start_without_task_k_minus_1_stops_before_anything_runs(tmp_path):
    run, trained = runner(tmp_path / "logs", "crl.tasks=[2]")
    message = r"starts at task 2, after the suite's first task 0, .*/task_1_seed1234 holds no finished stage"
    with pytest.raises(ConfigError, match=message):
        run.run()
    assert not trained and not (tmp_path / "logs").exists()


def test_it_continues_from_task_k_minus_1s_adapter_and_records_every_stage(tmp_path):
    root = tmp_path / "logs"
    adapter = finished_stage(root, 1, step=10)
    run, trained = runner(root, "crl.tasks='2,3'")
    run.run()
    assert trained[0]["actor"]["model"]["lora_path"] == str(adapter)  # task 2 starts from task 1
    assert trained[1]["actor"]["model"]["lora_path"].endswith("task_2_seed1234/checkpoints/global_step_2/actor")
    state = json.loads((root / "sequence_state_seed1234.json").read_text())
    assert [r["task_ids"] for r in state["history"]] == [[1], [2], [3]]
    assert [r["label"] for r in state["matrix"]["rows"]] == ["stage_1", "stage_2"]
    record = json.loads((root / "task_3_seed1234" / STAGE_RECORD_FILE).read_text())
    assert record["task_ids"] == [3] and record["extra"]["fisher_path"].endswith("task_3_seed1234/ewc_data.pt")


def test_recorded_method_outputs_come_along_and_an_explicit_start_wins(tmp_path):
    root = tmp_path / "logs"
    finished_stage(root, 0)
    fisher = str(root / "task_1_seed1234" / "ewc_data.pt")
    finished_stage(root, 1, record={"index": 1, "task_ids": [1], "run_dir": str(root / "task_1_seed1234"),
                                    "adapter_dir": "A1", "extra": {"fisher_path": fisher}})  # fmt: skip
    run, trained = runner(root, "crl=ewc", "crl.tasks=[2]")
    run.run()
    assert trained[0]["crl"]["previous_fisher_path"] == fisher and trained[0]["actor"]["model"]["lora_path"] == "A1"
    assert [r.task_ids for r in run.history] == [[0], [1], [2]]
    other, trained = runner(tmp_path / "elsewhere", "crl.tasks=[2]", "+actor.model.lora_path=/my/adapter")
    other.run()  # no task 1 there, but a start was named: no continuation
    assert trained[0]["actor"]["model"]["lora_path"] == "/my/adapter"


def test_the_plan_shows_the_continuation_or_the_problem(tmp_path):
    run, _ = runner(tmp_path / "logs", "crl.tasks=[2]")
    rows = run.plan()
    assert "problem: crl.tasks starts at task 2" in run.plan_notes[0] and rows[0]["label"] == "stage_0"
    adapter = finished_stage(tmp_path / "logs", 1)
    rows = run.plan()
    assert run.plan_notes == [f"continues after tasks [1]: {adapter}"] and rows[0]["label"] == "stage_1"
    assert rows[0]["train"]["actor.model.lora_path"] == str(adapter)


def test_the_plan_continues_a_sequence_recorded_in_the_log_root(tmp_path):
    root = tmp_path / "logs"
    first, _ = runner(root, "crl.tasks=[0]")
    first.run()
    again, trained = runner(root, "crl.tasks='0,1'")
    rows = again.plan()
    assert [r["label"] for r in rows] == ["stage_1"] and not trained  # task 0 finished: skipped, nothing runs
    assert again.plan_notes == [
        f"continues after tasks [0]: {root / 'task_0_seed1234/checkpoints/global_step_2/actor'}"
    ]
    assert rows[0]["train"]["actor.model.lora_path"].endswith("task_0_seed1234/checkpoints/global_step_2/actor")
