"""Atomic checkpoints: a save interrupted at any phase leaves the previous checkpoint the latest, loadable one.

The saves are real (a PEFT LoRA adapter with safetensors, AdamW state with torch.distributed.checkpoint,
trainer_state.json, the COMPLETE marker, the rename) on a tiny LoRA model, through
``checkpoint.save_atomic`` as the runner calls it. A fault is injected at every phase: an exception in this
process, or SIGKILL of a child process doing the save (a forked child per phase, run from this file as a
script). A full disk (OSError ENOSPC) ends a real run with one ``error:`` line (the e2e test, slow).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vlacrl.distributed.optimizer_state import load_optimizer, save_optimizer
from vlacrl.models.adapter_files import write_adapter
from vlacrl.runners import checkpoint
from vlacrl.runners.errors import CheckpointSaveError, WorkerDiedError

# Where a save can be interrupted: _phase hooks of save_atomic/finalize, and inside the three writes.
HOOK_PHASES = ["started", "written", "state", "marked", "set_aside"]
WRITE_PHASES = ["adapter", "optimizer", "trainer_state"]
PHASES = ["started", "adapter", "optimizer", "written", "trainer_state", "state", "marked", "set_aside"]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.proj(x)


def build(seed: int = 0):
    """A LoRA model and its AdamW after one step (so the optimizer has state to save)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(Tiny(), LoraConfig(r=2, lora_alpha=4, target_modules=["proj"], init_lora_weights=False))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(torch.randn(3, 8)).square().sum().backward()
    optimizer.step()
    return model, optimizer


def save(log_path: Path, step: int, model, optimizer) -> Path:
    """One checkpoint as the actor and the runner write it: adapter + optimizer, then the trainer state."""

    def write(tmp: Path) -> None:
        write_adapter(model, model.state_dict(), tmp / "actor")
        save_optimizer(model, optimizer, tmp / "actor" / "optim")

    return checkpoint.save_atomic(log_path, step, write, lambda: {"global_step": step, "env_samplers": []})


def assert_loadable(ckpt: Path, step: int) -> None:
    """The checkpoint is complete and loads: trainer state, adapter tensors, AdamW state (into a fresh model)."""
    from safetensors.torch import load_file

    assert (ckpt / checkpoint.COMPLETE).exists()
    assert checkpoint.read_trainer_state(ckpt)["global_step"] == step
    adapter = load_file(str(ckpt / "actor" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    assert json.loads((ckpt / "actor" / "adapter_config.json").read_text())["r"] == 2
    model, optimizer = build(seed=1)
    load_optimizer(model, optimizer, ckpt / "actor" / "optim")
    assert {float(s["step"]) for s in optimizer.state.values()} == {1.0}


def leftovers(log_path: Path) -> list[str]:
    return sorted(p.name for p in checkpoint.checkpoint_root(log_path).iterdir() if "-" in p.name)


def install_fault(phase: str, fault, patch) -> None:
    """Make the next save hit ``fault()`` at ``phase``; ``patch(obj, name, value)`` sets attributes."""
    if phase in HOOK_PHASES:
        patch(checkpoint, "_phase", lambda name: fault() if name == phase else None)
    elif phase == "adapter":  # half of the adapter file written
        import safetensors.torch as st

        def partial_adapter(tensors, filename, metadata=None):
            data = st.save(tensors, metadata)
            Path(filename).write_bytes(data[: len(data) // 2])
            fault()

        patch(st, "save_file", partial_adapter)
    elif phase == "optimizer":  # the optimizer files written, then cut in half
        import torch.distributed.checkpoint as dcp

        real_save = dcp.save

        def partial_optimizer(state, *, checkpoint_id, **kwargs):
            real_save(state, checkpoint_id=checkpoint_id, **kwargs)
            for path in Path(checkpoint_id).iterdir():
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            fault()

        patch(dcp, "save", partial_optimizer)
    elif phase == "trainer_state":  # half of trainer_state.json written
        real_write = checkpoint._write_synced

        def partial_state(path, text):
            if path.name == "trainer_state.json":
                path.write_text(text[: len(text) // 2])
                fault()
            real_write(path, text)

        patch(checkpoint, "_write_synced", partial_state)
    else:
        raise ValueError(phase)


def prepare(log_path: Path, phase: str, model, optimizer) -> tuple[Path, int]:
    """Checkpoint 1 (and 2 for ``set_aside``, which re-saves an existing step); returns (latest, step to save)."""
    latest = save(log_path, 1, model, optimizer)
    if phase == "set_aside":
        latest = save(log_path, 2, model, optimizer)
    return latest, 2


def io_error():
    raise OSError(errno.EIO, "injected I/O error")


@pytest.mark.parametrize("phase", PHASES)
def test_exception_at_any_phase_keeps_the_previous_checkpoint(tmp_path, monkeypatch, phase):
    model, optimizer = build()
    previous, step = prepare(tmp_path, phase, model, optimizer)
    install_fault(phase, io_error, monkeypatch.setattr)
    with pytest.raises(CheckpointSaveError) as info:
        save(tmp_path, step, model, optimizer)
    assert str(info.value) == (
        f"checkpoint save failed: OSError: [Errno 5] injected I/O error; the previous checkpoint {previous} is intact"
    )
    assert checkpoint.latest_checkpoint(tmp_path) == previous
    assert leftovers(tmp_path) == []  # the temp dir is removed at once (a replaced one is put back)
    monkeypatch.undo()
    assert_loadable(previous, checkpoint.read_trainer_state(previous)["global_step"])


def test_sigkill_at_any_phase_keeps_the_previous_checkpoint(tmp_path):
    """A child process SIGKILLs itself at each phase of a save; the previous checkpoint is the latest and
    loads; the leftovers are ignored, then removed by the next save."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, str(tmp_path), *PHASES], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    signals = json.loads(proc.stdout.strip().splitlines()[-1])
    assert signals == {phase: signal.SIGKILL.value for phase in PHASES}, signals
    model, optimizer = build()
    for phase in PHASES:
        log_path = tmp_path / phase
        latest = checkpoint.latest_checkpoint(log_path)
        assert latest == checkpoint.step_dir(log_path, 1), (phase, latest)  # set_aside: step 2 was moved aside
        assert_loadable(latest, 1)
        assert leftovers(log_path), phase  # the interrupted save's temp dir (or the set-aside dir) is left
        new = save(log_path, 2, model, optimizer)  # the next save cleans up
        assert leftovers(log_path) == [] and checkpoint.latest_checkpoint(log_path) == new
        assert_loadable(new, 2)
    print(f"{len(PHASES)} SIGKILLed saves checked in {time.perf_counter() - start:.1f}s")


def test_stale_temp_dirs_are_ignored_and_cleaned(tmp_path):
    model, optimizer = build()
    first = save(tmp_path, 1, model, optimizer)
    root = checkpoint.checkpoint_root(tmp_path)
    (root / "global_step_5.tmp-999" / "actor").mkdir(parents=True)
    (root / "global_step_5.tmp-999" / checkpoint.COMPLETE).write_text("ok\n")  # even with a marker
    (root / "global_step_7").mkdir()  # no COMPLETE: not a checkpoint
    assert checkpoint.latest_checkpoint(tmp_path) == first
    save(tmp_path, 2, model, optimizer)
    assert not (root / "global_step_5.tmp-999").exists()
    assert checkpoint.latest_checkpoint(tmp_path) == checkpoint.step_dir(tmp_path, 2)


def test_full_disk_names_the_reason_and_the_intact_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch as st

    model, optimizer = build()
    first = save(tmp_path, 1, model, optimizer)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(st, "save_file", no_space)
    with pytest.raises(CheckpointSaveError) as info:
        save(tmp_path, 2, model, optimizer)
    assert str(info.value) == (
        f"checkpoint save failed: OSError: [Errno 28] No space left on device; the previous checkpoint {first} "
        "is intact"
    )
    assert leftovers(tmp_path) == [] and checkpoint.latest_checkpoint(tmp_path) == first


def test_first_save_failing_says_there_is_no_earlier_checkpoint(tmp_path, monkeypatch):
    model, optimizer = build()
    install_fault("written", io_error, monkeypatch.setattr)
    with pytest.raises(CheckpointSaveError, match="I/O error; there is no earlier checkpoint$"):
        save(tmp_path, 1, model, optimizer)
    assert checkpoint.latest_checkpoint(tmp_path) is None


def test_sequence_state_is_replaced_atomically(tmp_path, monkeypatch):
    """The continual runner's sequence_state_seed<S>.json: an interrupted write leaves the old content."""
    state = tmp_path / "sequence_state_seed1234.json"
    checkpoint.write_text_atomic(state, json.dumps({"history": [1]}))
    real_write = checkpoint._write_synced

    def partial(path, text):
        path.write_text(text[: len(text) // 2])
        io_error()

    monkeypatch.setattr(checkpoint, "_write_synced", partial)
    with pytest.raises(OSError):
        checkpoint.write_text_atomic(state, json.dumps({"history": [1, 2]}))
    assert json.loads(state.read_text()) == {"history": [1]} and [p.name for p in tmp_path.iterdir()] == [state.name]
    monkeypatch.setattr(checkpoint, "_write_synced", real_write)
    checkpoint.write_text_atomic(state, json.dumps({"history": [1, 2]}))
    assert json.loads(state.read_text()) == {"history": [1, 2]}


@pytest.mark.parametrize(
    "error",
    [
        CheckpointSaveError("OSError: [Errno 28] No space left on device", "/runs/x/checkpoints/global_step_1"),
        WorkerDiedError("rollout", 0, 4242, "/tmp/ray/session_x/logs/worker-ab-01-4242.err", "it was killed"),
    ],
)
def test_run_failures_end_the_cli_with_one_line(capsys, error):
    from vlacrl.cli.common import run_guarded

    def fail(_cfg):
        raise error

    assert run_guarded(fail, None) == 1
    err = capsys.readouterr().err
    assert err == f"error: {error}\n" and "Traceback" not in err


# -- a full disk in a real run ----------------------------------------------------------------------------------
# Loaded by every Python process of the run (driver, Ray workers) through PYTHONPATH; only the actor's
# optimizer save of checkpoint 2 and later is affected: it raises ENOSPC as a full disk would.
FULL_DISK_SITECUSTOMIZE = """
import importlib.abc, importlib.machinery, os, re, sys

class _FullDiskFrom(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "vlacrl.distributed.optimizer_state":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            real_save = module.save_optimizer

            def save_optimizer(model, optimizer, out_dir):
                if int(re.search(r"global_step_(\\d+)", str(out_dir)).group(1)) >= 2:
                    raise OSError(28, "No space left on device")
                return real_save(model, optimizer, out_dir)

            module.save_optimizer = save_optimizer

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _FullDiskFrom())
"""


@pytest.mark.ray
@pytest.mark.libero
@pytest.mark.slow
def test_full_disk_in_a_real_run_ends_with_one_line(tmp_path):
    """The actor's second save hits ENOSPC: exit 1, one ``error:`` line, checkpoint 1 intact, no temp dir."""
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    tiny = write_tiny_checkpoint(tmp_path / "tiny")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FULL_DISK_SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    log_path = tmp_path / "run"
    cmd = [sys.executable, "-m", "vlacrl.cli.train", f"actor.checkpoint_load_path={tiny}",
           f"runner.logger.log_path={log_path}", "runner.max_epochs=3", "runner.save_interval=1",
           "env.train.max_episode_steps=8", "env.train.video_cfg.save_video=False", "actor.global_batch_size=2",
           "actor.micro_batch_size=2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL, env=env)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-5000:]
    first = checkpoint.step_dir(log_path, 1)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: checkpoint save failed: actor worker rank 0: OSError: [Errno 28] No space left on device; "
        f"the previous checkpoint {first} is intact"
    ], proc.stderr[-5000:]
    assert "Traceback" not in proc.stderr
    assert checkpoint.latest_checkpoint(log_path) == first and leftovers(log_path) == []
    assert (first / "actor" / "optim" / ".metadata").exists()


# -- the SIGKILL child (this file run as a script) ------------------------------------------------------------
def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def _sigkill_saves(root: Path, phases: list[str]) -> dict[str, int]:
    """For each phase: checkpoint 1 (and 2), then a forked child saves step 2 and SIGKILLs itself at the phase;
    returns the signal that ended each child."""
    torch.set_num_threads(1)  # no OpenMP pool to inherit across fork()
    model, optimizer = build()
    out = {}
    for phase in phases:
        _, step = prepare(root / phase, phase, model, optimizer)
        pid = os.fork()
        if pid == 0:  # the child: dies at the phase (exit code 3 if the fault was never reached)
            try:
                install_fault(phase, _kill_self, setattr)
                save(root / phase, step, model, optimizer)
            finally:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        out[phase] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
    return out


if __name__ == "__main__":
    print(json.dumps(_sigkill_saves(Path(sys.argv[1]), sys.argv[2:])))
