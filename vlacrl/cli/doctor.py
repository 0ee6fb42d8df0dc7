"""``vlacrl-doctor``: what this machine can run — Python/torch/GPUs, render backends, LIBERO, models.

Every probe that could hang (OpenGL drivers) runs in a subprocess with a timeout.
Exit code 0 when LIBERO loads and at least one render backend works, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from vlacrl.cli.common import OneLineParser
from vlacrl.envs.libero import render
from vlacrl.envs.libero.errors import LiberoSetupError
from vlacrl.envs.libero.setup import ensure_libero_ready
from vlacrl.paths import repo_root


def _line(ok: bool | None, label: str, detail: str) -> None:
    mark = {True: "ok  ", False: "FAIL", None: "--  "}[ok]
    print(f"[{mark}] {label:<22} {detail}")


def check_python() -> None:
    _line(True, "python", f"{platform.python_version()} ({sys.executable})")
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(gpus)) or "none (CPU mode)"
        _line(True, "torch", f"{torch.__version__}; CUDA GPUs: {gpus} {names}")
    except ImportError as exc:
        _line(False, "torch", str(exc))


def check_render(timeout_s: float) -> list[str]:
    working = []
    explicit = os.environ.get("MUJOCO_GL")
    for backend in ("egl", "osmesa"):
        result = render.probe_backend(backend, timeout_s=timeout_s)
        detail = f"{result.seconds:.1f}s: {result.detail}"
        _line(result.ok, f"render {backend}", detail)
        if result.ok:
            working.append(backend)
    chosen = explicit or ("egl" if "egl" in working and _has_gpu() else "osmesa")
    _line(None, "render choice", f"MUJOCO_GL={chosen}" + (" (set by you)" if explicit else " (automatic)"))
    return working


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def check_libero() -> bool:
    try:
        paths = ensure_libero_ready()
    except LiberoSetupError as exc:
        _line(False, "libero setup", str(exc))
        return False
    _line(True, "libero config", str(paths.config_file))
    _line(True, "libero assets", str(paths.assets))
    from vlacrl.envs.libero import suites

    ok = True
    for suite, expected in suites.SUITE_TASK_COUNTS.items():
        try:
            count = suites.num_tasks(suite)
            states = suites.init_states(suite, 0).shape
            good = count == expected
            _line(good, f"suite {suite}", f"{count} tasks, init states of task 0: {states}")
            ok &= good
        except Exception as exc:  # noqa: BLE001 - report, keep going
            _line(False, f"suite {suite}", f"{type(exc).__name__}: {exc}")
            ok = False
    return ok


def check_models(model_root: Path) -> None:
    dirs = sorted(p.parent for p in model_root.glob("*/config.json")) if model_root.is_dir() else []
    if not dirs:
        _line(None, "models", f"no HF-format checkpoint dirs under {model_root} (see model/README.md)")
    for d in dirs:
        shards = len(list(d.glob("*.safetensors")))
        _line(True, "model", f"{d.name}: {shards} safetensors file(s)")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per render probe")
    parser.add_argument("--model-root", type=Path, default=repo_root() / "model")
    args = parser.parse_args(argv)
    print("vlacrl doctor")
    check_python()
    backends = check_render(args.timeout)
    libero_ok = check_libero()
    check_models(args.model_root)
    healthy = bool(backends) and libero_ok
    print("summary:", "ready" if healthy else "NOT ready (see FAIL lines)")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
