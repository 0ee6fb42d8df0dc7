"""One command for a machine with NVIDIA GPUs: run what it can of vlacrl's GPU path, write one JSON report.

Each check runs when this machine has what it needs and is otherwise reported as skipped with the reason, so
the same command works on a bare lent GPU box (torch, transformers, peft, timm; no Ray, no LIBERO, no package
registry) and on a full install:

1. ``environment``: Python, torch, CUDA, every GPU's name and memory, the versions of the model libraries.
2. ``gpu_tests``: the tests marked ``gpu`` (``pytest -m gpu``; needs pytest and the test dependencies).
3. ``model_7b``: ``benchmarks/model_step.py --full``: the 7B OpenVLA-OFT architecture with random bf16 weights;
   rollout batch 64 (56-token parallel decode vs autoregressive) and the actor's micro-batch 32 with LoRA r = 32
   and gradient checkpointing (step time, peak memory).
4. ``egl_render``: one MuJoCo frame rendered with EGL on every GPU (needs mujoco and the NVIDIA EGL driver).
5. ``grpo_tiny_gpu``: 2 GRPO global steps of the tiny model on real Ray with NCCL and EGL (needs Ray, Hydra and
   LIBERO installed).

    bash scripts/gpu_check.sh [--dry-run] [--out DIR]

``--dry-run`` prints each check with the command it would run or why it would be skipped, and runs nothing.
Record the report's numbers with the exact command in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def cuda_gpus() -> int:
    """The number of CUDA GPUs torch sees (0 without torch or CUDA)."""
    if not has("torch"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    needs: Callable[[], str | None]  # None when the machine can run it, else the reason it cannot
    command: Callable[[Path], list[str]]
    timeout_s: int


def _needs_cuda() -> str | None:
    return None if cuda_gpus() > 0 else "no CUDA GPU visible to torch"


def _needs(*modules: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [m for m in modules if not has(m)]
        return _needs_cuda() or (f"not installed: {', '.join(missing)}" if missing else None)

    return check


ENVIRONMENT_SCRIPT = """
import json, platform, sys, torch
out = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
       "cuda": torch.version.cuda, "gpus": [{"name": torch.cuda.get_device_name(i),
       "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
       for i in range(torch.cuda.device_count())]}
for name in ("transformers", "peft", "timm", "accelerate", "ray", "hydra", "mujoco", "flash_attn"):
    try:
        out[name] = __import__(name).__version__
    except Exception:
        out[name] = None
print(json.dumps(out))
"""

EGL_SCRIPT = """
import json, os, torch
from vlacrl.envs.libero import render
results = []
for gpu in range(torch.cuda.device_count()):
    changes = render.render_env_for_subprocess(gpu)
    probe = render.probe_backend("egl", extra_env=changes)
    results.append({"gpu": gpu, "egl_device": changes.get("MUJOCO_EGL_DEVICE_ID"), "ok": probe.ok,
                    "seconds": round(probe.seconds, 2), "detail": probe.detail})
print(json.dumps(results))
raise SystemExit(0 if results and all(r["ok"] for r in results) else 1)
"""

CHECKS = (
    Check("environment", "Python, torch, CUDA, GPUs, library versions", lambda: None if has("torch") else
          "torch is not installed", lambda out: [PY, "-c", ENVIRONMENT_SCRIPT], 120),
    Check("gpu_tests", "the tests marked gpu", _needs("pytest", "omegaconf"),
          lambda out: [PY, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", str(ROOT / "tests")], 600),
    Check("model_7b", "7B architecture: decode ratio at batch 64, actor micro-batch 32 (LoRA r=32, grad ckpt)",
          _needs("transformers", "peft", "timm"),
          lambda out: [PY, str(ROOT / "benchmarks" / "model_step.py"), "--full", "--json", str(out / "model_7b.json")],
          900),
    Check("egl_render", "one MuJoCo frame with EGL on every GPU", _needs("mujoco"),
          lambda out: [PY, "-c", EGL_SCRIPT], 300),
    Check("grpo_tiny_gpu", "2 GRPO global steps of the tiny model on Ray with NCCL and EGL",
          _needs("ray", "hydra", "libero"),
          lambda out: [PY, "-m", "vlacrl.cli.train", "runner.max_epochs=2", f"runner.logger.log_path={out / 'grpo'}",
                       "~cluster.component_placement", "+cluster.component_placement={actor:'0',env:'0',rollout:'0'}",
                       "actor.model.precision=bf16"], 900),
)  # fmt: skip


def plan(out: Path) -> list[dict]:
    """Each check with the command it would run, or why it is skipped here."""
    rows = []
    for check in CHECKS:
        reason = check.needs()
        rows.append({"name": check.name, "what": check.what, "skip": reason, "command": check.command(out),
                     "timeout_s": check.timeout_s})  # fmt: skip
    return rows


def shown(command: list[str]) -> str:
    """The command as one line; an inline ``python -c`` script is named, not printed."""
    words = ["<inline script, benchmarks/gpu_check.py>" if i and command[i - 1] == "-c" else w
             for i, w in enumerate(command)]  # fmt: skip
    return " ".join(words)


def run(row: dict) -> dict:
    start = time.monotonic()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(row["command"], capture_output=True, text=True, timeout=row["timeout_s"], env=env,
                              cwd=ROOT, stdin=subprocess.DEVNULL)  # fmt: skip
        code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = 124, f"timed out after {row['timeout_s']} s: {exc}"
    result = {"rc": code, "seconds": round(time.monotonic() - start, 1), "output_tail": output[-4000:]}
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if last.startswith(("{", "[")):
        try:
            result["result"] = json.loads(last)
        except json.JSONDecodeError:
            pass
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print what would run; run nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check", help="report folder")
    args = parser.parse_args(argv)
    rows = plan(args.out.resolve())
    if args.dry_run:
        for row in rows:
            action = f"skip ({row['skip']})" if row["skip"] else "run: " + shown(row["command"])
            print(f"{row['name']:<14} {row['what']}\n{'':<14} {action}")
        return 0
    if cuda_gpus() == 0:
        print("error: no CUDA GPU visible to torch: run this on a machine with NVIDIA GPUs (--dry-run shows the plan)",
              file=sys.stderr)  # fmt: skip
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"host": platform.node(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "checks": {}}
    for row in rows:
        outcome = {"skipped": row["skip"]} if row["skip"] else run(row)
        report["checks"][row["name"]] = {"what": row["what"], "command": shown(row["command"]), **outcome}
        status = "skipped: " + row["skip"] if row["skip"] else f"rc {outcome['rc']} in {outcome['seconds']} s"
        print(f"{row['name']:<14} {status}", flush=True)
    path = args.out / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"report: {path}")
    failed = [n for n, c in report["checks"].items() if c.get("rc") not in (None, 0)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
