"""The bash launchers keep the reference's arguments and build valid vlacrl commands (checked via --dry-run).

Every dry-run command is parsed back and its Hydra overrides are composed with the named config, so a
launcher cannot emit an override that Hydra would reject.
"""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from vlacrl.config.compose import compose

ROOT = Path(__file__).resolve().parents[2]
DIR = ROOT / "examples" / "crl_experiment"
LAUNCHERS = sorted(p.name for p in DIR.glob("*.sh") if p.name != "common_functions.sh")


def launch(name, *args, plan: bool = False):
    """Run a launcher; ``--dry-run`` prints the plan of a sequence only with ``plan`` (it costs a Python start)."""
    env = {**os.environ, "VLACRL_LAUNCHER_PLAN": "1" if plan else "0"}
    return subprocess.run(["bash", str(DIR / name), *args], capture_output=True, text=True, timeout=120, env=env)


def dry_run(name, *args) -> list[str]:
    proc = launch(name, "--dry-run", *args)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("+ "))
    return shlex.split(line[2:])


def composed(cmd: list[str]):
    """Compose the config the command would run with (its --config-name and overrides)."""
    name = cmd[cmd.index("--config-name") + 1]
    overrides = [a for a in cmd[cmd.index("--config-name") + 2 :]]
    return compose(name, overrides)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_help(name):
    proc = launch(name, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: " + name)


def test_sequential_range_tag_and_log_dir():
    cmd = dry_run("run_embodiment_sequential.sh", "0,2", "", "5", "", "42", "actor.optim.lr=1e-5")
    assert Path(cmd[0]).name == "vlacrl-crl"
    cfg = composed(cmd)
    assert list(cfg.crl.tasks) == [0, 1, 2] and cfg.crl.method == "seq_ft" and cfg.crl.seed == 42
    assert cfg.runner.logger.log_path == "./logs_spatial/sequential" and cfg.runner.max_epochs == 5
    assert cfg.actor.optim.lr == 1e-5 and cfg.crl.stage_dir == "task_{tasks}_seed{seed}"


def test_sequential_with_checkpoint_and_object_config():
    cmd = dry_run(
        "run_embodiment_sequential.sh", "6", "/ckpt/actor", "", "crl_experiment/libero_object_grpo_openvlaoft_object"
    )
    cfg = composed(cmd)
    assert cfg.actor.model.lora_path == "/ckpt/actor" and cfg.runner.logger.log_path == "./logs_object/sequential"


@pytest.mark.parametrize("name,method", [("run_embodiment_ewc.sh", "ewc"), ("run_embodiment_er.sh", "er"),
                                         ("run_embodiment_der.sh", "der")])  # fmt: skip
def test_method_launchers(name, method):
    args = ["3"] if method == "ewc" else ["3", "0.05"]
    cfg = composed(dry_run(name, *args))
    assert cfg.crl.method == method and list(cfg.crl.tasks) == [3]
    assert cfg.runner.logger.log_path == f"./logs_spatial/{method}"
    if method != "ewc":
        assert cfg.crl.bc_coeff == 0.05


def test_weight_merge_coefficient_formatting():
    cfg = composed(dry_run("run_embodiment_weight_merge.sh", "0,1", "0.8"))
    assert cfg.crl.merge_coefficient == 0.8 and cfg.crl.stage_dir == "task_{tasks}_coeff_0_8_seed{seed}"
    default = composed(
        dry_run("run_embodiment_weight_merge.sh", "", "", "crl_experiment/libero_10_grpo_openvlaoft_long")
    )
    assert list(default.crl.tasks) == [3] and default.runner.logger.log_path == "./logs_long/weight_merge"


def test_slca_learning_rates_and_dir():
    cfg = composed(dry_run("run_embodiment_slca.sh", "2", "2e-6,2e-6,1e-5"))
    assert (cfg.crl.vision_lora_lr, cfg.crl.llm_lora_lr, cfg.crl.lm_head_lora_lr) == (2e-6, 2e-6, 1e-5)
    assert cfg.crl.stage_dir == "task_{tasks}_lr_v2e6_l2e6_h1e5_seed{seed}"
    assert composed(dry_run("run_embodiment_slca.sh", "2")).crl.stage_dir == "task_{tasks}_lr_v4e6_l4e6_h4e5_seed{seed}"


def test_multitask_sorts_ids_and_reorder_keeps_order():
    multi = composed(dry_run("run_embodiment_multitask.sh", "4 0 2"))
    assert list(multi.crl.tasks) == [0, 2, 4] and multi.crl.stage_dir == "tasks_{tasks}_seed{seed}"
    reorder = composed(dry_run("run_embodiment_sequential_reorder.sh", "3,1,2"))
    assert list(reorder.crl.order) == [3, 1, 2]
    assert reorder.runner.logger.log_path == "./logs_spatial/sequential_reorder/seq_3_1_2_seed1234"


def test_eval_launchers():
    cmd = dry_run("eval_embodiment.sh", "logs_spatial/sequential/task_0_seed1234", "10")
    assert Path(cmd[0]).name == "vlacrl-eval"
    cfg = composed(cmd)
    assert cfg.actor.model.lora_path.endswith(
        "logs_spatial/sequential/task_0_seed1234/checkpoints/global_step_10/actor"
    )
    assert cfg.algorithm.eval_rollout_epoch == 40
    base = composed(dry_run("eval_embodiment.sh", "base"))
    assert base.actor.model.is_lora is False
    scaled = composed(dry_run("eval_embodiment_lora_scale.sh", "logs_spatial/sequential/task_0_seed1234", "0.5"))
    assert scaled.actor.model.lora_scale == 0.5


def test_lora_scale_launcher_detects_weight_merge_runs_as_the_reference(tmp_path):
    """The reference's signature LOCATION [CURRENT_LORA_SCALE] [PREVIOUS_LORA_COEFF] [STEP] [CONFIG]: for
    .../weight_merge/task_<k>_coeff_<c>... the coefficient comes from the name, the scale defaults to 1.0, and
    the adapters of tasks first..k-1 beside it are merged with that coefficient."""
    runs = tmp_path / "logs_spatial" / "weight_merge"
    for task in (0, 1, 2):
        (runs / f"task_{task}_coeff_0_8_seed7" / "checkpoints" / "global_step_10" / "actor").mkdir(parents=True)
    cfg = composed(dry_run("eval_embodiment_lora_scale.sh", str(runs / "task_2_coeff_0_8_seed7")))
    earlier = [str(runs / f"task_{t}_coeff_0_8_seed7" / "checkpoints" / "global_step_10" / "actor") for t in (0, 1)]
    assert list(cfg.actor.model.lora_paths) == earlier and cfg.actor.model.previous_lora_merge_coefficient == 0.8
    assert cfg.actor.model.lora_scale == 1.0 and cfg.actor.model.lora_path.endswith(
        "task_2_coeff_0_8_seed7/checkpoints/global_step_10/actor"
    )
    both = composed(dry_run("eval_embodiment_lora_scale.sh", str(runs / "task_2_coeff_0_8_seed7"), "0.7", "0.5"))
    assert both.actor.model.lora_scale == 0.7 and both.actor.model.previous_lora_merge_coefficient == 0.5
    first = composed(dry_run("eval_embodiment_lora_scale.sh", str(runs / "task_0_coeff_0_8_seed7")))
    assert not first.actor.model.get("lora_paths") and first.actor.model.lora_scale == 1.0
    (runs / "task_0_coeff_0_8_seed7" / "checkpoints" / "global_step_10" / "actor").rmdir()
    proc = launch("eval_embodiment_lora_scale.sh", str(runs / "task_2_coeff_0_8_seed7"))
    assert proc.returncode == 2 and "the adapter of earlier task 0 is missing" in proc.stderr


def test_ewc_reuses_an_existing_first_task_adapter_for_its_fisher():
    """The reference's EWC path: logs_<tag>/ewc/task_<first>_seed<S>/.../actor exists and no sequence is recorded
    there: one step from that adapter (only to write the Fisher) into task_<first>_from_existing_seed<S>/, then the
    rest of the range; with a recorded sequence, or a range starting later, the plain command."""
    import shutil

    seed = "987654"  # a log root of its own under the checkout, removed afterwards
    run_dir = ROOT / "logs_spatial" / "ewc" / f"task_0_seed{seed}"
    (run_dir / "checkpoints" / "global_step_10" / "actor").mkdir(parents=True)
    try:
        proc = launch("run_embodiment_ewc.sh", "--dry-run", "0,2", "", "", "", seed)
        assert proc.returncode == 0, proc.stderr
        first, rest = [shlex.split(x[2:]) for x in proc.stdout.splitlines() if x.startswith("+ ")]
        fisher_only, later = composed(first), composed(rest)
        assert fisher_only.runner.max_epochs == 1 and list(fisher_only.crl.tasks) == [0]
        assert fisher_only.actor.model.lora_path == str(run_dir / "checkpoints" / "global_step_10" / "actor")
        assert fisher_only.crl.stage_dir == "task_{tasks}_from_existing_seed{seed}" and list(later.crl.tasks) == [1, 2]
        (run_dir.parent / f"sequence_state_seed{seed}.json").write_text("{}")
        plain = [x for x in launch("run_embodiment_ewc.sh", "--dry-run", "0,2", "", "", "", seed).stdout.splitlines()
                 if x.startswith("+ ")]  # fmt: skip
        assert len(plain) == 1 and "runner.max_epochs=1" not in plain[0]
    finally:
        shutil.rmtree(ROOT / "logs_spatial" / "ewc" / f"task_0_seed{seed}")
        (ROOT / "logs_spatial" / "ewc" / f"sequence_state_seed{seed}.json").unlink(missing_ok=True)
        for empty in (ROOT / "logs_spatial" / "ewc", ROOT / "logs_spatial"):
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()


def test_random_action_baseline_through_the_eval_launcher():
    cfg = composed(dry_run("eval_embodiment.sh", "base", "", "", "rollout.random_action=True"))
    assert cfg.rollout.random_action is True and cfg.actor.model.is_lora is False


def test_a_later_start_shows_where_it_continues_or_why_not():
    proc = launch("run_embodiment_sequential.sh", "--dry-run", "3", "", "", "", "987655", plan=True)
    assert proc.returncode == 0 and "problem: crl.tasks starts at task 3, after the suite's first task 0" in proc.stdout


def test_dry_run_shows_the_sequences_plan():
    """``--dry-run`` of a training launcher prints its command and the plan of ``crl.dry_run=True`` (stages,
    overrides, episodes per task) without starting Ray or writing anything; Object's first task is 5."""
    config = "crl_experiment/libero_object_grpo_openvlaoft_object"
    proc = launch("run_embodiment_ewc.sh", "--dry-run", "5,6", "", "", config, plan=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("+ ") and "dry run: crl=ewc, suite libero_object" in proc.stdout
    assert "stage_0: trains tasks [5]" in proc.stdout and "stage_1: trains tasks [6]" in proc.stdout
    assert proc.stdout.count("episodes per task: 320") == 2
    assert "crl.previous_fisher_path=<fisher_path of stage_0>" in proc.stdout


def test_compute_base_logits_picks_the_suite_model():
    cmd = dry_run("compute_base_logits_embodiment.sh", "crl_experiment/libero_10_grpo_openvlaoft_long", "--rlds", "/d")
    assert Path(cmd[0]).name == "vlacrl-precompute-logits"
    assert cmd[1:5] == ["--suite", "libero_10", "--model-dir", str(ROOT / "model" / "Openvla-oft-SFT-libero10-trajall")]


@pytest.mark.parametrize(
    "name,args,message",
    [
        ("run_embodiment_sequential.sh", ["3,1"], "must be smaller"),
        ("run_embodiment_sequential.sh", ["x"], "task id must be"),
        ("run_embodiment_sequential.sh", ["0", "", "", "", "s1"], "SEED must be"),
        ("run_embodiment_weight_merge.sh", ["0", "1.5"], "MERGE_COEFF must be in"),
        ("run_embodiment_multitask.sh", [], "TASK_IDS is required"),
        ("eval_embodiment_lora_scale.sh", ["dir", "2"], "CURRENT_LORA_SCALE must be in"),
        ("eval_embodiment_lora_scale.sh", ["logs/sequential/task_0_seed1234"], "CURRENT_LORA_SCALE (2nd argument) is"),
        ("eval_embodiment_lora_scale.sh", ["logs/sequential/task_0_seed1234", "0.5", "0.5"], "weight-merge"),
    ],
)
def test_bad_arguments(name, args, message):
    proc = launch(name, "--dry-run", *args)
    assert proc.returncode == 2 and message in proc.stderr and not proc.stdout.startswith("+ ")


def test_simple_cnn_chains_model_pt_with_the_cnn_config():
    cmd = dry_run("run_embodiment_simple_cnn.sh", "0,1", "/runs/task_0/actor/model.pt", "3", "", "7")
    cfg = composed(cmd)
    assert cfg.crl.method == "seq_ft" and list(cfg.crl.tasks) == [0, 1] and cfg.crl.seed == 7  # crl=simple_cnn
    assert cfg.actor.model.model_name == "simple_cnn" and cfg.actor.model.is_lora is False
    assert cfg.actor.checkpoint_load_path == "/runs/task_0/actor/model.pt" and cfg.runner.max_epochs == 3
    assert cfg.runner.logger.log_path == "./logs_cnn/simple_cnn"  # the reference's tag of "..._simple_cnn"


def test_openvla_configs_get_their_own_log_root_and_eval_twin():
    """The autoregressive OpenVLA's runs never share a log root with OpenVLA-OFT's (a later invocation would
    continue from an OFT adapter), and its evaluation twin is found like OFT's."""
    config = "crl_experiment/libero_spatial_grpo_openvla_spatial"
    cfg = composed(dry_run("run_embodiment_ewc.sh", "0,1", "", "", config, "7"))
    assert cfg.actor.model.model_name == "openvla" and cfg.actor.model.num_action_chunks == 1
    assert cfg.runner.logger.log_path == "./logs_spatial_openvla/ewc" and cfg.crl.first_task == 0
    oft = composed(dry_run("run_embodiment_ewc.sh", "0,1", "", "", "", "7"))
    assert oft.runner.logger.log_path == "./logs_spatial/ewc"
    evaluation = dry_run("eval_embodiment.sh", "logs_spatial_openvla/ewc/task_1_seed7", "10",
                         "crl_experiment/libero_spatial_grpo_openvla_eval_spatial")  # fmt: skip
    assert composed(evaluation).algorithm.eval_rollout_epoch == 40
    assert "runner.logger.log_path=./logs_spatial_openvla/evals/task_1_seed7_step_10" in evaluation


def test_simple_cnn_rejects_a_directory_checkpoint():
    proc = launch("run_embodiment_simple_cnn.sh", "--dry-run", "0", "/runs/task_0/actor")
    assert proc.returncode == 2 and "must be a .pt file" in proc.stderr


@pytest.mark.parametrize(
    "name,method", [("run_embodiment_crl_vla.sh", "crl_vla"), ("run_embodiment_ire_vla.sh", "ire_vla")]
)
def test_crl_vla_and_ire_vla_launchers(name, method):
    cmd = dry_run(
        name, "0,1", "/ckpt/actor", "4", "", "9", "crl.critic=q" if method == "crl_vla" else "crl.stage2_steps=5"
    )
    cfg = composed(cmd)
    assert cfg.crl.method == method and list(cfg.crl.tasks) == [0, 1] and cfg.crl.seed == 9
    assert cfg.runner.logger.log_path == f"./logs_spatial/{method}" and cfg.runner.max_epochs == 4
    assert cfg.actor.model.lora_path == "/ckpt/actor"
    assert (cfg.crl.critic == "q") if method == "crl_vla" else (cfg.crl.stage2_steps == 5)
