"""A Ray worker process dying mid-run (SIGKILL from outside, as the OOM killer does): the CLI ends with exit
code 1 and ONE ``error:`` line naming the worker's role, rank, pid and Ray log file (no cascade of the other
workers' errors, no traceback); the last checkpoint is complete and loads; every process of the run ends.
An env worker is the exception: it is replaced and the run completes (bounded by
``runner.max_env_worker_restarts``).

The worker's pid is found among the CLI's descendant processes by its Ray process title
(``ray::RolloutWorker``, ``ray::ActorWorker``, ``ray::EnvWorker``).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.libero]

SHORT = ["algorithm=ppo", "runner.max_epochs=4", "runner.save_interval=1", "env.train.max_episode_steps=8",
         "env.train.video_cfg.save_video=False", "actor.global_batch_size=2", "actor.micro_batch_size=2"]  # fmt: skip
ROLES = {"rollout": "RolloutWorker", "actor": "ActorWorker", "env": "EnvWorker"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny")


def worker_process(root: psutil.Process, cls: str) -> psutil.Process | None:
    """The descendant of ``root`` whose Ray process title is ``ray::<cls>`` (idle) or ``ray::<cls>.<method>``."""
    for proc in root.children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if re.match(rf"ray::{cls}(\.|\s|$)", title):
            return proc
    return None


def assert_loadable(ckpt: Path, tmp_path: Path) -> int:
    """A complete checkpoint: trainer state, adapter tensors, the AdamW state (converted with DCP)."""
    import torch
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from vlacrl.runners import checkpoint

    step = checkpoint.read_trainer_state(ckpt)["global_step"]
    assert load_file(str(ckpt / "actor" / "adapter_model.safetensors"))
    dcp_to_torch_save(str(ckpt / "actor" / "optim"), str(tmp_path / "optim.pt"))
    state = torch.load(tmp_path / "optim.pt", weights_only=False)["optim"]["state"]
    assert {float(s["step"]) for s in state.values()} == {float(step)}
    return step


def kill_worker_mid_run(tmp_path: Path, tiny: Path, role: str) -> tuple[subprocess.Popen, int, list, float]:
    """Start a run, wait for checkpoint 1, SIGKILL the ``role`` worker; returns (proc, pid, descendants, t)."""
    log_path = tmp_path / "run"
    cmd = [sys.executable, "-m", "vlacrl.cli.train", f"actor.checkpoint_load_path={tiny}",
           f"runner.logger.log_path={log_path}", *SHORT]  # fmt: skip
    start = time.perf_counter()
    with open(tmp_path / "stdout.log", "w") as out, open(tmp_path / "stderr.log", "w") as err:  # files: no full pipe
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    marker = log_path / "checkpoints" / "global_step_1" / "COMPLETE"
    while not marker.exists():
        if proc.poll() is not None or time.perf_counter() - start > 900:
            proc.kill()
            pytest.fail(f"the run ended or hung before checkpoint 1:\n{(tmp_path / 'stderr.log').read_text()[-4000:]}")
        time.sleep(0.2)
    root = psutil.Process(proc.pid)
    victim = worker_process(root, ROLES[role])
    assert victim is not None, [" ".join(p.cmdline()[:1]) for p in root.children(recursive=True)]
    descendants = root.children(recursive=True)
    victim.send_signal(signal.SIGKILL)
    return proc, victim.pid, descendants, time.perf_counter() - start


@pytest.mark.parametrize("role", ["rollout", pytest.param("actor", marks=pytest.mark.slow)])
def test_sigkilled_worker_ends_the_run_with_one_line(tmp_path, tiny, role):
    from vlacrl.runners import checkpoint

    proc, pid, descendants, killed_at = kill_worker_mid_run(tmp_path, tiny, role)
    try:
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = (tmp_path / "stdout.log").read_text(), (tmp_path / "stderr.log").read_text()
    assert proc.returncode == 1, out[-2000:] + err[-5000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err[-5000:]
    line = errors[0]
    assert line.startswith(f"error: {role} worker rank 0 died (pid {pid}): its process ended without a Python error")
    log_file = Path(re.search(r"its log: (\S+)$", line).group(1))
    assert log_file.name.startswith("worker-") and log_file.name.endswith(f"-{pid}.err") and log_file.exists()
    assert "Traceback" not in err and "RayTaskError" not in err and "ActorDiedError" not in err, err[-5000:]

    log_path = tmp_path / "run"
    latest = checkpoint.latest_checkpoint(log_path)
    assert latest is not None and assert_loadable(latest, tmp_path) >= 1
    assert not list(checkpoint.checkpoint_root(log_path).glob("*.tmp-*"))  # no half-written save left behind

    deadline = time.time() + 60  # the run stopped cleanly: Ray's processes and the sims are gone
    alive = descendants
    while alive and time.time() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    for p in alive:
        p.kill()
    assert not alive, [p.pid for p in alive]
    print(f"{role} worker killed {killed_at:.0f}s after the start; {line}")


def test_sigkilled_env_worker_is_replaced_and_the_run_completes(tmp_path, tiny):
    """The env worker dies after checkpoint 1: a new one takes its rank, the step's rollouts run again from the
    step's sampler/generator states, and all 4 global steps finish; the replacement is counted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vlacrl.runners import checkpoint

    proc, pid, _, _ = kill_worker_mid_run(tmp_path, tiny, "env")
    try:
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = (tmp_path / "stdout.log").read_text(), (tmp_path / "stderr.log").read_text()
    assert proc.returncode == 0, out[-2000:] + err[-5000:]
    assert f"env worker rank 0 died (pid {pid})" in out + err and "replac" in out + err
    latest = checkpoint.latest_checkpoint(tmp_path / "run")
    assert latest is not None and assert_loadable(latest, tmp_path) == 4
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    assert all(e.value > 0 for e in acc.Scalars("train/actor/grad_norm"))  # PPO: real updates around the restart
    totals = [e.value for e in acc.Scalars("env/worker_restarts_total")]
    assert totals[-1] == 1.0 and sum(e.value for e in acc.Scalars("env/worker_restarts")) == 1.0
