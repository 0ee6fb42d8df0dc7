"""Pure pieces of the continual runner: task ranges, the success matrix files, config overrides."""

import csv
import json

import pytest
from omegaconf import OmegaConf

from vlacrl.config.tasks import parse_task_range
from vlacrl.config.validate import ConfigError
from vlacrl.runners.continual import SuccessMatrix, with_overrides


@pytest.mark.parametrize(
    "value,expected",
    [(5, [5]), ("5", [5]), ("0,9", list(range(10))), ("[2, 4]", [2, 3, 4]), ("(0,1)", [0, 1]), ([3, 1], [3, 1])],
)
def test_task_ranges_as_the_launchers_parse_them(value, expected):
    assert parse_task_range(value) == expected


@pytest.mark.parametrize("value", ["4,2", "a,b", "1,2,3"])
def test_bad_task_ranges(value):
    with pytest.raises(ConfigError, match="crl.tasks"):
        parse_task_range(value)


def test_success_matrix_rows_and_files(tmp_path):
    matrix = SuccessMatrix(tasks=[0, 1, 2])
    row = matrix.add("base", [], {"eval/env_info/task_0_success": 0.5, "eval/env_info/task_2_success": 1.0})
    assert row == [0.5, -1.0, 1.0]
    matrix.add("stage_0", [0], {f"eval/env_info/task_{k}_success": 0.25 * k for k in range(3)})
    matrix.write(tmp_path)
    data = json.loads((tmp_path / "success_matrix.json").read_text())
    assert data["tasks"] == [0, 1, 2] and data["rows"][1]["trained_tasks"] == [0]
    rows = list(csv.reader(open(tmp_path / "success_matrix.csv")))
    assert rows[0] == ["after", "task_0", "task_1", "task_2"] and rows[2] == ["stage_0", "0.0", "0.25", "0.5"]


def test_overrides_add_new_keys_and_keep_interpolations():
    cfg = OmegaConf.create({"env": {"fixed_task_ids": None, "train": {"fixed_task_ids": "${env.fixed_task_ids}"}}})
    out = with_overrides(cfg, {"env.fixed_task_ids": [3], "actor.model.lora_path": "/a"})
    assert list(out.env.train.fixed_task_ids) == [3] and out.actor.model.lora_path == "/a"
    assert cfg.env.fixed_task_ids is None  # the original is untouched


def test_eval_envs_must_split_evenly_over_the_evaluated_tasks(tmp_path):
    """Caught before the first stage trains, not at its evaluation."""
    from vlacrl.config.compose import compose
    from vlacrl.config.validate import ConfigError
    from vlacrl.crl.base import CRLMethod
    from vlacrl.runners.continual import ContinualRunner

    cfg = compose("cpu_tiny", [f"runner.logger.log_path={tmp_path}", "crl.eval_tasks=null"])  # 2 eval envs, 10 tasks
    with pytest.raises(ConfigError, match=r"env.eval.num_envs \(2\) must give each of the 10 evaluated tasks"):
        ContinualRunner(cfg, CRLMethod(cfg), None, None)
    ok = compose(
        "cpu_tiny", [f"runner.logger.log_path={tmp_path}", "crl.eval_tasks=[0,1,2,3,4]", "env.eval.num_envs=5"]
    )
    assert ContinualRunner(ok, CRLMethod(ok), None, None).eval_tasks == [0, 1, 2, 3, 4]
