"""The paper's protocol for per-stage evaluation: every stage is evaluated as the reference's ``_eval`` twin config
evaluates (40 epochs x 8 envs per task = 320 episodes per task), and ``crl.dry_run=True`` shows that plan."""

import sys

import pytest
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.crl.registry import build_method
from vlacrl.runners.continual import ContinualRunner

TWINS = {  # training config → the reference's evaluation twin (under crl_experiment/)
    "libero_spatial_grpo_openvlaoft_spatial": "libero_spatial_grpo_openvlaoft_eval_spatial",
    "libero_object_grpo_openvlaoft_object": "libero_object_grpo_openvlaoft_eval_object",
    "libero_10_grpo_openvlaoft_long": "libero_10_grpo_openvlaoft_eval_long",
    "libero_spatial_grpo_simple_cnn": "libero_spatial_grpo_simple_cnn_eval",
    "libero_spatial_grpo_openvla_spatial": "libero_spatial_grpo_openvla_eval_spatial",
}
#: what evaluation reads besides the model: episodes, envs, sampling, episode length, memory placement
EVAL_KEYS = ["algorithm.eval_rollout_epoch", "algorithm.sampling_params", "env.eval", "actor.enable_offload",
             "rollout.enable_offload", "actor.model.lora_scale"]  # fmt: skip


def runner_for(config: str, *overrides: str) -> ContinualRunner:
    cfg = compose(f"crl_experiment/{config}", ["crl.tasks=[5,6]", "crl.eval_base=True", *overrides])
    return ContinualRunner(cfg, build_method(OmegaConf.to_container(cfg, resolve=True)), None, None)


@pytest.mark.parametrize("config", sorted(TWINS))
def test_every_stage_is_evaluated_with_320_episodes_per_task(config):
    rows = runner_for(config).plan()
    assert [r["label"] for r in rows] == ["base", "stage_0", "stage_1"]
    assert [r["episodes_per_task"] for r in rows] == [320, 320, 320]


@pytest.mark.parametrize("config", sorted(TWINS))
def test_the_stage_evaluation_config_equals_the_eval_twin_on_what_evaluation_reads(config):
    runner = runner_for(config)
    evaluated = runner.eval_config({})
    twin = compose(f"crl_experiment/{TWINS[config]}", [f"env.eval.fixed_task_ids={runner.eval_tasks}".replace(" ", "")])
    for key in EVAL_KEYS:
        ours, theirs = OmegaConf.select(evaluated, key), OmegaConf.select(twin, key)
        if OmegaConf.is_config(ours):
            ours, theirs = OmegaConf.to_container(ours, resolve=True), OmegaConf.to_container(theirs, resolve=True)
        if key == "actor.model.lora_scale":  # unset means 1.0 (vlacrl/workers/policy_setup.py)
            ours, theirs = 1.0 if ours is None else ours, 1.0 if theirs is None else theirs
        assert ours == theirs, key


def test_without_eval_overrides_the_training_settings_evaluate():
    """The broken variant the test above guards against: the training config alone evaluates 160 episodes."""
    runner = runner_for("libero_spatial_grpo_openvlaoft_spatial", "crl.eval_overrides=null")
    assert {r["episodes_per_task"] for r in runner.plan()} == {160}


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path, monkeypatch, capsys):
    from vlacrl.cli import crl

    log = tmp_path / "run"
    config = "crl_experiment/libero_spatial_grpo_openvlaoft_spatial"
    argv = ["crl.tasks=[0,1]", "crl=ewc", "crl.dry_run=True", f"runner.logger.log_path={log}"]
    monkeypatch.setattr(sys, "argv", ["vlacrl-crl", "--config-name", config, *argv])
    with pytest.raises(SystemExit) as exit_info:
        crl.main()
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert out.count("episodes per task: 320") == 2 and "stage_1: trains tasks [1]" in out
    assert "validation: actor.checkpoint_load_path: Bad model directory" in out  # reported, not fatal
    assert not log.exists() and ("ray" not in sys.modules or not sys.modules["ray"].is_initialized())
