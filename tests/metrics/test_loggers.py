"""Metric backends: TensorBoard scalars under the given names, WandB offline without a key, timers."""

import time

import pytest

from vlacrl.metrics.evaluation import average_epochs, epoch_metrics
from vlacrl.metrics.loggers import MetricLogger, save_resolved_config
from vlacrl.metrics.timers import PhaseTimer


def test_tensorboard_and_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = MetricLogger(["console", "tensorboard", "wandb"], tmp_path, name="t", config={"a": 1}, wandb_mode="offline")
    log.log({"train/actor/policy_loss": 0.5, "rollout/env_info/success_once": 1.0, "note": "text"}, step=3)
    log.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"train/actor/policy_loss", "rollout/env_info/success_once"}
    assert acc.Scalars("train/actor/policy_loss")[0].step == 3
    assert any((tmp_path / "wandb").glob("offline-run-*"))


def test_unknown_backend_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown logger backend"):
        MetricLogger(["mlflow"], tmp_path)


def test_resolved_config_is_saved(tmp_path):
    path = save_resolved_config({"runner": {"max_epochs": 2}}, tmp_path)
    assert "max_epochs: 2" in path.read_text() and (tmp_path / "config.json").exists()


def test_phase_timer_accumulates_and_clears():
    timer = PhaseTimer()
    with timer.phase("rollout"):
        time.sleep(0.01)
    timer.add("rollout", 1.0)
    out = timer.pop()
    assert set(out) == {"time/rollout"} and out["time/rollout"] > 1.0
    assert timer.pop() == {}


def test_eval_metrics_per_task_and_summary():
    episodes = {
        "task_id": [0, 0, 1, 1, 1],
        "success_once": [True, False, True, True, False],
        "success_at_end": [True, False, False, True, False],
        "episode_len": [512] * 5,
        "return": [5.0, 0.0, 5.0, 5.0, 0.0],
        "reward": [5 / 512, 0, 5 / 512, 5 / 512, 0],
    }
    m = epoch_metrics(episodes, task_ids=[0, 1, 2])
    assert m["env_info/task_0_success"] == 0.5 and m["env_info/task_0_success_total"] == 2.0
    assert m["env_info/task_1_success"] == pytest.approx(2 / 3) and m["env_info/task_2_success"] == -1.0
    assert m["env_info/success_once"] == 0.6 and m["env_info/success_at_end"] == 0.4
    assert average_epochs([{"a": 1.0}, {"a": 0.0, "b": 2.0}]) == {"a": 0.5, "b": 2.0}
