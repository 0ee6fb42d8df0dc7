"""kill -9 of a whole run, then ``runner.resume=auto``: the resumed run equals an uninterrupted one, bit for bit.

Real processes and signals: the CLI is started in its own session (process group) and the whole group is
SIGKILLed (driver, Ray's GCS and raylet); Ray's worker processes and the LIBERO sim processes, which live in
process groups of their own, must all be gone shortly after (no stale Ray cluster), and the next run on
the same machine must start normally.

The runs use PPO (value head): with 8-step episodes a random policy never succeeds, so GRPO's advantages
would all be zero and the weights would not depend on the rollouts at all; PPO's value loss and GAE
advantages make every update depend on the sampled actions, the env init states and the data order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.libero]

SHORT = ["algorithm=ppo", "runner.save_interval=1", "env.train.max_episode_steps=8", "env.eval.max_episode_steps=8",
         "env.train.video_cfg.save_video=False", "env.eval.video_cfg.save_video=False",
         "actor.global_batch_size=2", "actor.micro_batch_size=2"]  # fmt: skip
LOSSES = ["train/actor/policy_loss", "train/total/loss", "train/critic/value_loss", "train/actor/grad_norm"]
ADAPTER_FILES = ["adapter_model.safetensors", "value_head.safetensors"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny")


def command(module: str, tiny: Path, log_path: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", module, f"actor.checkpoint_load_path={tiny}", f"runner.logger.log_path={log_path}",
            *SHORT, *overrides]  # fmt: skip


def run_cli(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-5000:]
    return proc


def kill_run_when(cmd: list[str], ready, log: Path, timeout: float = 900) -> float:
    """Start ``cmd`` in a new session, wait until ``ready()``, SIGKILL its process group; wait until every
    process it had started (Ray workers and sims included) is gone. Returns the seconds until the kill."""
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the run ended (code {proc.returncode}) before the kill:\n{log.read_text()[-4000:]}")
            assert time.perf_counter() - start < timeout, "the run never reached the kill point"
            time.sleep(0.2)
        descendants = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)
        killed_after = time.perf_counter() - start
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert_all_gone(descendants)
    return killed_after


def assert_all_gone(processes: list[psutil.Process], timeout: float = 60) -> None:
    """Every process ends within ``timeout`` s; survivors are killed and the test fails."""
    deadline = time.time() + timeout
    alive = processes
    while alive and time.time() < deadline:
        time.sleep(0.5)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    names = [(p.pid, " ".join(p.cmdline()[:2])) for p in alive if p.is_running()]
    for p in alive:
        p.kill()
    assert not names, f"processes of the killed run still alive after {timeout}s: {names}"


def complete(path: Path):
    return (path / "COMPLETE").exists


def scalars(event_files: list[Path]) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from the given TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, dict[int, float]] = {}
    for path in event_files:
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return out


def event_files(log_path: Path) -> set[Path]:
    return set((log_path / "tensorboard").glob("events.out.tfevents.*"))


def latest_step(log_path: Path) -> int:
    from vlacrl.runners import checkpoint

    latest = checkpoint.latest_checkpoint(log_path)
    return 0 if latest is None else checkpoint.read_trainer_state(latest)["global_step"]


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


@pytest.mark.slow  # ~1.5-3 min; CI time budget (run with: pytest -m slow)
def test_sigkill_mid_task_then_resume_equals_an_uninterrupted_run(tmp_path, tiny):
    """3 global steps uninterrupted vs. SIGKILL of the whole run after checkpoint 1, resumed to step 3."""
    timings = {}
    start = time.perf_counter()
    reference = tmp_path / "reference"
    run_cli(command("vlacrl.cli.train", tiny, reference, "runner.max_epochs=3"))
    timings["uninterrupted"] = time.perf_counter() - start

    run = tmp_path / "killed"
    cmd = command("vlacrl.cli.train", tiny, run, "runner.max_epochs=3")
    timings["until_kill"] = kill_run_when(cmd, complete(run / "checkpoints" / "global_step_1"), tmp_path / "killed.log")
    resumed_at = latest_step(run)
    assert resumed_at in (1, 2), resumed_at  # killed mid-task: step 3 not reached

    start = time.perf_counter()
    before = event_files(run)
    proc = run_cli(cmd + ["runner.resume=auto"])  # on the same machine: no stale Ray cluster in the way
    timings["resumed"] = time.perf_counter() - start
    assert f"at global step {resumed_at}" in proc.stdout + proc.stderr

    for name in ADAPTER_FILES:  # the final weights, bit for bit
        final = Path("checkpoints") / "global_step_3" / "actor" / name
        assert same_bytes(reference / final, run / final), name
    first = reference / "checkpoints" / "global_step_1" / "actor" / ADAPTER_FILES[0]
    assert not same_bytes(first, reference / "checkpoints" / "global_step_3" / "actor" / ADAPTER_FILES[0])

    expected, got = scalars(sorted(event_files(reference))), scalars(sorted(event_files(run) - before))
    for tag in LOSSES:  # every step after the resume logs exactly the uninterrupted run's value
        assert sorted(got[tag]) == list(range(resumed_at, 3)), tag
        assert got[tag] == {s: expected[tag][s] for s in range(resumed_at, 3)}, tag
    assert all(v > 0 for v in expected["train/actor/grad_norm"].values())  # the updates are not trivial
    print(f"resumed at step {resumed_at}; timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))


CRL = ["crl=seq_ft", "runner.max_epochs=1", "crl.tasks=[0,1]", "crl.eval_tasks=[0,1]"]


def stage_adapter(root: Path, stage: int) -> Path:
    return root / f"task_{stage}_seed1234" / "checkpoints" / "global_step_1" / "actor"


@pytest.mark.slow
def test_sigkill_between_tasks_then_resume_continues_the_sequence(tmp_path, tiny):
    """A 2-task sequence (seq_ft) vs. SIGKILL right after stage 0's row is written, then rerun."""
    timings = {}
    start = time.perf_counter()
    reference = tmp_path / "reference"
    run_cli(command("vlacrl.cli.crl", tiny, reference, *CRL))
    timings["uninterrupted"] = time.perf_counter() - start

    root = tmp_path / "killed"
    state = root / "sequence_state_seed1234.json"

    def stage0_done() -> bool:
        try:
            return len(json.loads(state.read_text())["history"]) == 1
        except (OSError, ValueError):  # not there yet, or being written
            return False

    cmd = command("vlacrl.cli.crl", tiny, root, *CRL)
    timings["until_kill"] = kill_run_when(cmd, stage0_done, tmp_path / "killed.log")
    assert not (stage_adapter(root, 1) / ADAPTER_FILES[0]).exists()

    start = time.perf_counter()
    proc = run_cli(cmd + ["runner.resume=auto"])
    timings["resumed"] = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert "continuing the sequence after 1 finished stage(s)" in out and "sequence stage 0:" not in out

    matrix = json.loads((root / "success_matrix_seed1234.json").read_text())
    assert [r["label"] for r in matrix["rows"]] == ["stage_0", "stage_1"]
    assert matrix == json.loads((reference / "success_matrix_seed1234.json").read_text())
    for stage in (0, 1):
        for name in ADAPTER_FILES:
            assert same_bytes(stage_adapter(reference, stage) / name, stage_adapter(root, stage) / name), (stage, name)
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
