"""Bad input end to end: the real CLIs and launchers, each in a subprocess, fail before any worker starts.

Every case must end with a non-zero exit code and exactly one ``error:`` line naming the problem, without a
traceback, without Ray starting, and without output that could pass for a finished run (its log dir is never
created: no checkpoint, no ``COMPLETE``, no success matrix). The cases run concurrently (one module fixture
starts the selected ones, a few seconds each); the table in docs/reliability.md ("Bad input") lists them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.libero  # the CLIs prepare LIBERO and probe the renderer (no Ray, no simulation)

ROOT = Path(__file__).resolve().parents[2]
LAUNCHERS = ROOT / "examples" / "crl_experiment"
METHODS = "['crl_vla', 'der', 'er', 'ewc', 'ire_vla', 'multitask', 'seq_ft', 'seq_ft_reorder', 'simple_cnn', 'slca'"

# case id → (command: a vlacrl.cli module or a launcher .sh, its arguments, extra env, text of the error line).
# "{d}" is the fixture dir, "{log}" the case's log dir (must never be created). One case per kind of bad input
# (each subprocess imports torch: ~5 CPU seconds); the variants run in-process below (VALIDATE_CASES).
CASES = {
    "unknown_method_group": ("crl", ["crl=bogus"], {}, "crl=bogus: there is no configs/crl/bogus.yaml; choose one of"),
    "unknown_method": ("train", ["crl.method=bogus"], {}, f"unknown crl.method 'bogus'; choose one of {METHODS}"),
    "malformed_task_range": ("crl", ["crl.tasks='0,x'"], {}, "crl.tasks: cannot parse '0,x'; use k, 'a,b'"),
    "task_out_of_range": ("eval", ["env.fixed_task_ids=[12]"], {}, "env.train: task id(s) [12] out of range"),
    "missing_model_dir": ("train", ["actor.checkpoint_load_path={d}/none", "actor.create_tiny_checkpoint=false"], {},
                          "rollout.model_dir: Bad model directory {d}/none: the directory does not exist"),
    "missing_adapter": ("eval", ["+actor.model.lora_path={d}/none"], {},
                        "actor.model.lora_path: {d}/none is not a LoRA adapter directory"),
    "missing_fisher": ("train", ["crl=ewc", "crl.previous_fisher_path={d}/none/ewc_data.pt"], {},
                       "crl.previous_fisher_path: {d}/none/ewc_data.pt is missing"),
    "missing_demo_dir": ("crl", ["crl=er", "crl.dataset_dir={d}/none"], {},
                         "crl.dataset_dir: replay data directory {d}/none does not exist"),
    "corrupted_adapter": ("train", ["+actor.model.lora_path={d}/corrupted"], {},
                          "actor.model.lora_path: {d}/corrupted/adapter_model.safetensors is corrupted or truncated"),
    "adapter_rank": ("train", ["+actor.model.lora_path={d}/rank8"], {},
                     "actor.model.lora_path: {d}/rank8 has rank r=8 but actor.model.lora_rank is 32"),
    "adapter_targets": ("crl", ["+actor.model.lora_path={d}/foreign_targets"], {},
                        "its target_modules ['dense', 'query_key_value'] name no module of this model"),
    "batch_not_dividing": ("train", ["actor.global_batch_size=3"], {},
                           "actor.global_batch_size (3) must be divisible by actor.micro_batch_size (2)"),
    "gpu_without_gpus": ("train", ["~cluster.component_placement",
                                   "+cluster.component_placement={actor:'0-1',env:all,rollout:all}"], {},
                         "actor is placed on GPUs 0-1 but this machine has no GPUs"),
    "no_render_backend": ("train", [], {"MUJOCO_GL": "nonexistent"}, "MUJOCO_GL=nonexistent: unknown render backend"),
    "precompute_missing_demo_dir": ("precompute_logits", ["--no-logits", "--input", "{d}/none",
                                                          "--output-dir", "{log}"], {},
                                    "input {d}/none does not exist"),
    # the launchers: the Python side's error reaches the user
    "launcher_task_out_of_range": ("run_embodiment_sequential.sh", ["12", "", "", "", ""], {},
                                   "crl.tasks: task id(s) [12] out of range"),
    "launcher_missing_checkpoint": ("run_embodiment_ewc.sh", ["0", "{d}/none", "", "", ""], {},
                                    "actor.model.lora_path: {d}/none is not a LoRA adapter directory"),
    "launcher_eval_missing_run": ("eval_embodiment.sh", ["{d}/no_run", "10", ""], {},
                                  "{d}/no_run/checkpoints/global_step_10/actor is not a LoRA adapter directory"),
}  # fmt: skip

# The variants, through validate_config in this process (what start_run and vlacrl-crl run before Ray):
# case id → (overrides of cpu_tiny, extra env, text of the message).
VALIDATE_CASES = {
    "reversed_task_range": (["crl.tasks='3,1'"], {}, "crl.tasks: '3,1' must be one id k or a range 'a,b' with a < b"),
    "eval_task_out_of_range": (["crl.eval_tasks=[0,10]"], {},
                               "crl.eval_tasks: task id(s) [10] out of range for libero_spatial"),
    "bad_method_key": (["crl=er", "crl.replay_tasks=some"], {}, "crl.method=er: crl.replay_tasks must be one of"),
    "der_without_logits": (["crl=der", "crl.dataset_dir={d}/replay_no_logits"], {},
                           "has no processed_action_logits (DER with cached logits"),
    "er_replay_dir_ok": (["crl=er", "crl.dataset_dir={d}/replay_no_logits"], {}, None),
    "corrupted_model_shard": (["actor.checkpoint_load_path={d}/model_corrupted"], {},
                              "rollout.model_dir: Bad model directory {d}/model_corrupted: a weight file is corrupted"),
    "truncated_adapter": (["+actor.model.lora_path={d}/truncated"], {}, "incomplete metadata, file not fully covered"),
    "adapter_shapes": (["+actor.model.lora_path={d}/foreign_shapes"], {},
                       "1 adapter tensor(s) do not fit the model's layers or the adapter's r"),
    "adapter_other_modules": (["+actor.model.lora_path={d}/other_modules"], {},
                              "tensor(s) belong to modules this model does not have"),
    "merged_adapter_corrupted": (["+actor.model.lora_paths=[{d}/rank8,{d}/corrupted]"], {},
                                 "actor.model.lora_paths: {d}/corrupted/adapter_model.safetensors is corrupted"),
    "adapter_fits": (["+actor.model.lora_path={d}/rank8", "actor.model.lora_rank=8"], {}, None),
    "adapter_rank_in_eval": (["+actor.model.lora_path={d}/rank8", "runner.only_eval=true"], {}, None),
    "render_backend_fails": ([], {"MUJOCO_GL": "glfw", "DISPLAY": None}, "MuJoCo cannot render with MUJOCO_GL=glfw"),
}  # fmt: skip


def command(name: str, args: list[str], d: Path, log: Path) -> list[str]:
    """The argv of one case: launchers get the tiny model and the log dir as trailing Hydra overrides."""
    fill = [a.replace("{d}", str(d)).replace("{log}", str(log)) for a in args]
    if name.endswith(".sh"):
        return ["bash", str(LAUNCHERS / name), *fill, f"actor.checkpoint_load_path={d}/tiny",
                f"runner.logger.log_path={log}"]  # fmt: skip
    if name == "precompute_logits":
        return [sys.executable, "-m", "vlacrl.cli.precompute_logits", *fill]
    base = [f"actor.checkpoint_load_path={d}/tiny", f"runner.logger.log_path={log}"]
    return [sys.executable, "-m", f"vlacrl.cli.{name}", *base, *fill]


def run_case(case: str, d: Path) -> dict:
    name, args, env_extra, _ = CASES[case]
    log = d / "logs" / case
    env = {**os.environ, "MUJOCO_GL": "osmesa", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    for key, value in env_extra.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    proc = subprocess.run(command(name, args, d, log), capture_output=True, text=True, timeout=300, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL)  # fmt: skip
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "log": log}


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


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad_inputs")
    write_inputs(d)
    return d


@pytest.fixture(scope="module")
def results(request, inputs):
    """Run every selected case (4 at a time) once; case id → rc, stdout, stderr, log dir."""
    d = inputs
    cli_test = "test_bad_input_gives_one_error_line_before_any_worker"
    wanted = sorted({item.callspec.params["case"] for item in request.session.items
                     if item.module is request.module and getattr(item, "originalname", "") == cli_test})  # fmt: skip
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(wanted, pool.map(lambda c: run_case(c, d), wanted)))
    return d, done


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_error_line_before_any_worker(results, case):
    d, done = results
    out = done[case]
    expected = CASES[case][3].replace("{d}", str(d))
    both = out["stdout"] + out["stderr"]
    errors = [line for line in out["stderr"].splitlines() if line.startswith("error:")]
    assert out["rc"] == (1 if CASES[case][0] == "precompute_logits" else 2), both[-3000:]
    assert len(errors) == 1, both[-3000:]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in both and "HYDRA_FULL_ERROR" not in both
    assert not any(text in both for text in ("Ray ready", "ray::", "Started a local Ray", "ActorDiedError"))
    assert not out["log"].exists(), sorted(out["log"].rglob("*"))  # no checkpoint, COMPLETE, matrix, or logs


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


@pytest.mark.parametrize("case", sorted(VALIDATE_CASES))
def test_variants_fail_validation_with_one_line(inputs, monkeypatch, case):
    """The same checks in-process: ConfigError with one line (None: the config is valid)."""
    from vlacrl.config.compose import compose
    from vlacrl.config.validate import ConfigError, validate_config

    overrides, env, expected = VALIDATE_CASES[case]
    for key, value in env.items():
        monkeypatch.delenv(key, raising=False) if value is None else monkeypatch.setenv(key, value)
    cfg = compose("cpu_tiny", [f"actor.checkpoint_load_path={inputs}/tiny",
                               *(o.replace("{d}", str(inputs)) for o in overrides)])  # fmt: skip
    if expected is None:
        validate_config(cfg, num_gpus=0)
        return
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, num_gpus=0)
    assert expected.replace("{d}", str(inputs)) in str(info.value) and "\n" not in str(info.value)


def test_precompute_with_a_corrupted_model_is_one_line(inputs, tmp_path, capsys):
    from vlacrl.cli.precompute_logits import main

    model = f"{inputs}/model_corrupted"
    assert main(["--model-dir", model, "--input", f"{inputs}/demos", "--output-dir", str(tmp_path / "o")]) == 1
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
