"""Bad input end to end: every case of the bad-input table (bad_input_table.py, rendered in docs/reliability.md)
fails before any worker starts.

The console commands run in this process (their ``main``, with ``sys.argv`` set), the launchers in a subprocess.
Every case must end with a non-zero exit code (2: bad input), exactly one ``error:`` line containing the case's
text and at most 3 lines of output, without a traceback, without Ray starting, without creating its log dir and
without creating or changing any file of the input folder (a mistyped model path gets no tiny model written).
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from bad_input_table import ARGPARSE_COMMANDS, CASES, HYDRA_COMMANDS, Case, documented_table, markdown_table

pytestmark = pytest.mark.libero  # the CLIs prepare LIBERO and probe the renderer (no Ray, no simulation)

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = ROOT / "examples" / "crl_experiment"
BY_NAME = {c.name: c for c in CASES}


def write_inputs(d: Path) -> None:
    """The tiny model, adapters that fit / do not fit it, corrupted copies, demo and replay files."""
    from safetensors.torch import load_file, save_file

    from vlacrl.data import cache_file_name, write_cache_file
    from vlacrl.data.formats import Demo
    from vlacrl.data.libero_hdf5 import write_libero_demo_file
    from vlacrl.envs.libero import suites
    from vlacrl.models.lora import add_lora, save_lora
    from vlacrl.models.openvla_oft import load_policy, write_tiny_checkpoint

    tiny = write_tiny_checkpoint(d / "tiny")
    shutil.copytree(tiny, d / "model_corrupted")
    shard = sorted((d / "model_corrupted").glob("model-*.safetensors"))[1]
    shard.write_bytes(shard.read_bytes()[:1000])  # an interrupted download
    save_lora(add_lora(load_policy(tiny, dtype=torch.float32), rank=8), d / "rank8")
    fitting = d / "rank8"
    for name, content in (("corrupted", b"not a safetensors file" * 10), ("truncated", None)):
        shutil.copytree(fitting, d / name)
        weights = d / name / "adapter_model.safetensors"
        weights.write_bytes(content or weights.read_bytes()[:-100])
    config = json.loads((fitting / "adapter_config.json").read_text())
    tensors = load_file(str(fitting / "adapter_model.safetensors"))
    foreign = {  # adapters of a model with a wider MLP, more layers, other module names (GPT-NeoX style)
        "foreign_shapes": (config, {k: torch.zeros(8, v.shape[1] + 8) if "layers.0.mlp.down_proj.lora_A" in k else v
                                    for k, v in tensors.items()}),
        "other_modules": (config, {k.replace("layers.1.", "layers.7."): v for k, v in tensors.items()}),
        "foreign_targets": ({**config, "target_modules": ["query_key_value", "dense"]},
                            {k.replace("self_attn.q_proj", "attention.query_key_value"): v
                             for k, v in tensors.items()}),
    }  # fmt: skip
    for name, (adapter_config, adapter_tensors) in foreign.items():
        (d / name).mkdir()
        (d / name / "adapter_config.json").write_text(json.dumps(adapter_config))
        save_file(adapter_tensors, str(d / name / "adapter_model.safetensors"))
    rng = np.random.default_rng(0)
    language = suites.task_spec("libero_spatial", 0).language
    actions = rng.uniform(-0.9, 0.9, (9, 7)).astype(np.float32)
    frames = rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    write_libero_demo_file(d / "demos" / f"{language.replace(' ', '_')}_demo.hdf5", language, [(actions, frames)])
    write_cache_file(d / "replay_no_logits" / cache_file_name(language), [("demo_0", Demo(actions, frames))],
                     instruction=language)  # fmt: skip


def write_broken_model_dirs(d: Path) -> None:
    """Copies of the tiny model whose config.json is not JSON, or not an OpenVLA config."""
    for name, text in (("model_not_json", "{oops"), ("model_gpt2", json.dumps({"model_type": "gpt2"}))):
        shutil.copytree(d / "tiny", d / name)
        (d / name / "config.json").write_text(text)


def write_resume_checkpoints(d: Path) -> None:
    """Log dirs whose latest complete checkpoint (global_step_2) has one damaged file each."""
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import save_file

    def checkpoint(name: str) -> Path:
        ckpt = d / name / "checkpoints" / "global_step_2"
        shutil.copytree(d / "rank8", ckpt / "actor")
        save_file({"weight": torch.zeros(1, 4)}, str(ckpt / "actor" / "value_head.safetensors"))
        dcp.save({"optim": {"state": torch.zeros(1000)}}, checkpoint_id=str(ckpt / "actor" / "optim"), no_dist=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 2, "env_samplers": []}))
        (ckpt / "COMPLETE").write_text("")
        return ckpt

    (checkpoint("resume_state") / "trainer_state.json").write_text("{not json")
    shard = checkpoint("resume_optim") / "actor" / "optim" / "__0_0.distcp"
    shard.write_bytes(shard.read_bytes()[:1000])
    (checkpoint("resume_index") / "actor" / "optim" / ".metadata").unlink()
    truncated = (("resume_adapter", "adapter_model.safetensors"), ("resume_value_head", "value_head.safetensors"))
    for name, file in truncated:
        weights = checkpoint(name) / "actor" / file
        weights.write_bytes(weights.read_bytes()[:-10])


def write_matrices(d: Path) -> None:
    """Success matrices vlacrl-metrics must refuse: a success of 1.5, a repeated row label."""
    matrices = (("matrix_above_one", [[1.5, 0.2], [0.5, 0.9]], ["stage_0", "stage_1"]),
                ("matrix_repeated_label", [[0.5, 0.2], [0.5, 0.9]], ["stage_0", "stage_0"]))  # fmt: skip
    for name, rows, labels in matrices:
        data = {"tasks": [0, 1], "rows": [{"label": label, "trained_tasks": [i], "success": row}
                                          for i, (label, row) in enumerate(zip(labels, rows))]}  # fmt: skip
        (d / name).mkdir()
        (d / name / "success_matrix_seed1.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad_inputs")
    write_inputs(d)
    write_broken_model_dirs(d)
    write_resume_checkpoints(d)
    write_matrices(d)
    (d / "a_file").write_text("a file where a directory is expected")
    return d


def snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*")}


def fill(args: tuple[str, ...], d: Path, log: Path) -> list[str]:
    return [a.replace("{d}", str(d)).replace("{log}", str(log)) for a in args]


def run_in_process(c: Case, d: Path, log: Path, monkeypatch, capsys) -> tuple[int, str]:
    """The console command's ``main`` with ``sys.argv`` set; (exit code, stdout + stderr)."""
    args = fill(c.args, d, log)
    if c.command in HYDRA_COMMANDS:
        module = HYDRA_COMMANDS[c.command]
        options = args[:2] if args[:1] == ["--config-name"] else []  # Hydra's options come before the overrides
        args = [
            *options,
            f"actor.checkpoint_load_path={d}/tiny",
            f"runner.logger.log_path={log}",
            *args[len(options) :],
        ]
    else:
        module = ARGPARSE_COMMANDS[c.command]
    monkeypatch.setattr(sys, "argv", [c.command, *args])
    try:
        code = importlib.import_module(f"vlacrl.cli.{module}").main()
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return int(code or 0), out.out + out.err


def run_launcher(c: Case, d: Path, log: Path) -> tuple[int, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    for key, value in c.env.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    argv = ["bash", str(LAUNCHERS / c.command), *fill(c.args, d, log), f"actor.checkpoint_load_path={d}/tiny",
            f"runner.logger.log_path={log}"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


def ray_started() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_bad_input_gives_one_error_line_before_any_worker(inputs, tmp_path, monkeypatch, capsys, name):
    c, d, log = BY_NAME[name], inputs, tmp_path / "log"
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    for key, value in c.env.items():
        monkeypatch.delenv(key, raising=False) if value is None else monkeypatch.setenv(key, value)
    before = snapshot(d)
    if c.command.endswith(".sh"):
        code, output = run_launcher(c, d, log)
    else:
        code, output = run_in_process(c, d, log, monkeypatch, capsys)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2, output[-3000:]
    assert len(errors) == 1 and len(output.strip().splitlines()) <= 3, output[-3000:]
    assert c.message.replace("{d}", str(d)) in errors[0], errors[0]
    assert "Traceback" not in output and "HYDRA_FULL_ERROR" not in output
    assert not ray_started() and not any(t in output for t in ("Ray ready", "ray::", "Started a local Ray"))
    assert not log.exists(), sorted(log.rglob("*"))  # no checkpoint, COMPLETE, matrix, or logs
    assert snapshot(d) == before, "an input file was created or changed"
    assert not any(Path(p.replace("{d}", str(d))).exists() for p in c.absent)


def test_the_docs_table_lists_every_case():
    """docs/reliability.md's table is generated from CASES: python tests/reliability/bad_input_table.py --write"""
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)
    assert documented_table() == markdown_table()


@pytest.mark.parametrize(
    "overrides",
    [
        ["crl=er", "crl.dataset_dir={d}/replay_no_logits"],  # ER needs no cached logits
        ["+actor.model.lora_path={d}/rank8", "actor.model.lora_rank=8"],  # an adapter that fits
        ["+actor.model.lora_path={d}/rank8", "runner.only_eval=true"],  # evaluation loads any rank
    ],
)
def test_near_misses_pass_validation(inputs, overrides):
    """Valid inputs next to the bad ones: validation accepts them (the checks are not over-eager)."""
    from vlacrl.config.compose import compose
    from vlacrl.config.validate import validate_config

    cfg = compose("cpu_tiny", [f"actor.checkpoint_load_path={inputs}/tiny", *(o.replace("{d}", str(inputs))
                                                                                for o in overrides)])  # fmt: skip
    validate_config(cfg, num_gpus=0)


@pytest.mark.parametrize(
    "args,message",
    [
        (["12", "runner.max_epochs=1"], 'CHECKPOINT_PATH got the override "runner.max_epochs=1": give every'),
        (["12", "", "1e3"], 'MAX_EPOCH must be a positive integer, got "1e3"'),
        (["12", "", "", "runner.max_epochs=1"], 'CONFIG_NAME got the override "runner.max_epochs=1"'),
    ],
)
def test_launcher_rejects_an_override_in_place_of_a_positional_argument(args, message):
    """Bash checks of the launchers (exit code 2, ``ERROR:``): nothing runs."""
    proc = subprocess.run(["bash", str(LAUNCHERS / "run_embodiment_sequential.sh"), *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"ERROR: {message}")


def test_precompute_with_a_corrupted_model_is_one_line(inputs, tmp_path, capsys):
    from vlacrl.cli.precompute_logits import main

    model = f"{inputs}/model_corrupted"
    assert main(["--model-dir", model, "--input", f"{inputs}/demos", "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: a weight file of {inputs}/model_corrupted is corrupted or truncated")
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_full_disk_outside_a_worker_is_one_line(tmp_path, capsys):
    """A real ENOSPC (writing to /dev/full) in the driver: one ``error:`` line naming the file, exit code 1."""
    from vlacrl.cli.common import run_guarded

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    target = tmp_path / "trainer_state.json"
    target.symlink_to("/dev/full")

    def write(_cfg):
        with open(target, "w") as f:
            f.write("x" * 1_000_000)
            f.flush()
        return 0

    assert run_guarded(write, None) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on device") and err.count("\n") == 1
    assert "runner.resume=auto" in err and "Traceback" not in err


def test_read_only_log_dir_is_one_line(capsys):
    """EACCES / EROFS / EDQUOT / ENOSPC raised with a file name: the name is in the line."""
    from vlacrl.cli.common import run_guarded

    def fail(_cfg):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/runs/x/config.yaml")

    assert run_guarded(fail, None) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Read-only file system writing /runs/x/config.yaml: choose a writable")
