"""The whole spine on the CPU default: real Ray, FSDP2 (gloo), LIBERO (OSMesa), the tiny real-architecture model.

vlacrl-train runs 2 PPO global steps and checkpoints; a second invocation resumes at step 3 with the saved
AdamW state; vlacrl-eval evaluates the checkpoint. Everything runs as a user runs it (subprocesses). PPO, not
GRPO: the random tiny model never succeeds in LIBERO, so every GRPO group would be filtered and the updates
would have a zero gradient; PPO's value loss and GAE advantages give every update a real gradient (GRPO's
learning is tested in the probe world, tests/learning).
"""

import json
import re
import subprocess
import sys

import pytest
import torch

pytestmark = [pytest.mark.ray, pytest.mark.libero]

REFERENCE_KEYS = {
    "rollout/rewards", "rollout/advantages_mean", "rollout/returns_max", "rollout/env_info/success_once",
    "rollout/env_info/return", "rollout/env_info/episode_len", "rollout/env_info/task_0_success",
    "train/actor/policy_loss", "train/actor/raw_loss", "train/actor/ppo_kl", "train/actor/policy_clipfrac",
    "train/actor/grad_norm", "train/actor/lr", "train/rl/loss", "train/total/loss",
    "time/step", "time/rollout", "time/actor_training", "time/weight_sync", "time/env_step", "time/rollout_inference",
}  # fmt: skip
PPO_KEYS = (REFERENCE_KEYS - {"train/actor/policy_clipfrac", "train/actor/ppo_kl"}) | {"train/critic/value_loss"}
HEALTH_KEYS = {"env/restarts", "env/restarts_total", "memory/env_worker_rss_mb", "memory/env_sims_rss_mb",
               "memory/actor_rss_mb", "memory/rollout_rss_mb"}  # fmt: skip


def run_cli(module, *overrides, timeout=900):
    cmd = [sys.executable, "-m", module, *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


#: third-party notices and Python warnings that must not reach the console (issue O; docs/troubleshooting.md)
NOISE = re.compile(r"No private macro file|Gym has been unmaintained|[A-Za-z]*Warning: |is deprecated")


def noise(*runs) -> list[str]:
    """Console lines of ``runs`` (CompletedProcess) that are third-party notices or Python warnings."""
    return [line for run in runs for line in (run.stdout + run.stderr).splitlines() if NOISE.search(line)]


def tensorboard_values(log_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


def tensorboard_tags(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def optimizer_steps(optim_dir, tmp_path):
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    dcp_to_torch_save(str(optim_dir), str(tmp_path / "optim.pt"))
    state = torch.load(tmp_path / "optim.pt", weights_only=False)["optim"]["state"]
    return {float(s["step"]) for s in state.values()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    common = [f"runner.logger.log_path={root / 'run'}", f"actor.checkpoint_load_path={root / 'model'}", "algorithm=ppo",
              "actor.create_tiny_checkpoint=true"]  # fmt: skip
    return root, common


def test_train_two_steps_resume_at_three_then_evaluate(run, tmp_path):
    root, common = run
    first = run_cli("vlacrl.cli.train", *common)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    ckpt2 = root / "run" / "checkpoints" / "global_step_2"
    assert (ckpt2 / "COMPLETE").exists() and (ckpt2 / "actor" / "adapter_model.safetensors").exists()
    state2 = json.loads((ckpt2 / "trainer_state.json").read_text())
    assert state2["global_step"] == 2 and len(state2["rollout_rng"]) == 1 and len(state2["env_samplers"]) == 1
    tags = tensorboard_tags(root / "run" / "tensorboard")
    assert PPO_KEYS | HEALTH_KEYS <= set(tags), (PPO_KEYS | HEALTH_KEYS) - set(tags)
    assert tags["train/actor/policy_loss"] == [0, 1]
    assert all(g > 0 for g in tensorboard_values(root / "run" / "tensorboard", "train/actor/grad_norm"))
    assert optimizer_steps(ckpt2 / "actor" / "optim", tmp_path) == {2.0}  # one AdamW step per global step
    assert "where the time went (2 global steps" in first.stdout + first.stderr  # the phase table ends the run
    output = first.stdout + first.stderr
    assert "actor rank 0: forward" in output and "busy share of the wall time" in output
    for phase in ("actor_forward", "actor_backward", "actor_optimizer"):  # rank 0's split, every step
        assert all(s > 0 for s in tensorboard_values(root / "run" / "tensorboard", f"time/{phase}")), phase
    assert "coordination overhead (no worker stepping envs, inferring or training)" in output
    shares = tensorboard_values(root / "run" / "tensorboard", "time_share/coordination_overhead")
    assert len(shares) == 2 and all(0 < share < 1 for share in shares), shares  # workers busy part of each step

    second = run_cli("vlacrl.cli.train", *common, "runner.max_epochs=3")
    assert second.returncode == 0, second.stderr[-5000:]
    assert "resumed from" in second.stdout + second.stderr and "at global step 2" in second.stdout + second.stderr
    ckpt3 = root / "run" / "checkpoints" / "global_step_3"
    assert json.loads((ckpt3 / "trainer_state.json").read_text())["global_step"] == 3
    assert optimizer_steps(ckpt3 / "actor" / "optim", tmp_path) == {3.0}  # AdamW state continued, not restarted
    assert tensorboard_tags(root / "run" / "tensorboard")["train/actor/policy_loss"] == [0, 1, 2]

    evaluation = run_cli("vlacrl.cli.eval", *common, f"+actor.model.lora_path={ckpt3 / 'actor'}")
    assert evaluation.returncode == 0, evaluation.stderr[-5000:]
    line = next(x for x in evaluation.stdout.splitlines() if x.startswith("eval_metrics="))
    metrics = json.loads(line.split("=", 1)[1])
    assert metrics["eval/env_info/task_0_success_total"] == 2.0  # 2 eval envs x 1 epoch, task 0 only
    assert 0.0 <= metrics["eval/env_info/task_0_success"] <= 1.0
    assert metrics["eval/env_info/episode_len"] == 16.0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (eval_tb,) = (root / "run" / "evals").glob("*/tensorboard")
    acc = EventAccumulator(str(eval_tb))
    acc.Reload()
    assert [t for t in acc.Tags()["images"] if t.startswith("eval/video/")]  # the episode video, as a GIF
    assert noise(first, second, evaluation) == []  # train, resume and evaluate print no notices or warnings


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["actor.global_batch_size=3"], "actor.global_batch_size (3) must be divisible"),
        (["env.fixed_task_ids=[12]"], "task id(s) [12] out of range for libero_spatial"),
        (["env.train.task_suite_name=libero_100"], "unknown LIBERO suite 'libero_100'"),
        (["actor.checkpoint_load_path=/nowhere/model", "actor.create_tiny_checkpoint=false"], "Bad model directory"),
    ],
)
def test_bad_config_fails_before_ray_with_one_line(overrides, message):
    proc = run_cli("vlacrl.cli.train", *overrides, timeout=300)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert "Ray ready" not in proc.stdout + proc.stderr


def test_ppo_with_value_head_runs_a_step(tmp_path, run):
    root, common = run
    proc = run_cli("vlacrl.cli.train", *common[1:], f"runner.logger.log_path={tmp_path / 'ppo'}", "runner.max_epochs=1")
    assert proc.returncode == 0, proc.stderr[-5000:]
    tags = tensorboard_tags(tmp_path / "ppo" / "tensorboard")
    assert {"train/critic/value_loss", "train/critic/value_clip_ratio", "train/actor/policy_loss"} <= set(tags)
    head = tmp_path / "ppo" / "checkpoints" / "global_step_1" / "actor" / "value_head.safetensors"
    assert head.exists()  # the value head is saved for resume (the reference never saved it)
