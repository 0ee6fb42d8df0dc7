"""``bash scripts/gpu_check.sh``: the plan it prints here (no GPU), and its refusal to run without one."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ["environment", "gpu_tests", "model_7b", "egl_render", "grpo_tiny_gpu"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), *args], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip


def test_dry_run_prints_every_check_with_its_command_or_the_reason_it_is_skipped(tmp_path):
    proc = run("--dry-run", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line and not line.startswith(" ")]
    assert names == CHECKS
    assert "run: " in proc.stdout and "<inline script, benchmarks/gpu_check.py>" in proc.stdout
    assert "benchmarks/model_step.py --full" in proc.stdout or "skip (no CUDA GPU visible to torch)" in proc.stdout
    assert not (tmp_path / "report").exists()  # a dry run writes nothing


def test_without_a_gpu_it_refuses_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the real run is the check
    proc = run("--out", str(tmp_path / "report"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: no CUDA GPU visible to torch")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "report").exists()
