"""A non-editable install (a wheel, as ``pip install vlacrl`` would make) runs from a directory with no checkout:
the Hydra configs ship inside the package (``vlacrl/configs``)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(cwd), "MUJOCO_GL": "osmesa"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_a_wheel_install_composes_and_validates_from_an_empty_directory(tmp_path):
    source, wheels, site, empty = (tmp_path / name for name in ("source", "wheels", "site", "empty"))
    shutil.copytree(ROOT / "vlacrl", source / "vlacrl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], check=True)
    subprocess.run([*pip, "install", "--no-deps", "--target", site, *wheels.glob("*.whl")], check=True)
    empty.mkdir()

    code = "import vlacrl.paths as p; print(p.__file__); print(p.config_dir())"
    where = run([sys.executable, "-c", code], empty, site)
    module, configs = where.stdout.split()
    assert module.startswith(str(site)) and Path(configs, "cpu_tiny.yaml").is_file(), where.stderr
    composed = run([sys.executable, "-c", "from vlacrl.config.compose import compose; "
                    "print(compose('crl_experiment/libero_spatial_grpo_openvlaoft_spatial', ['crl=ewc']).crl.method)"],
                   empty, site)  # fmt: skip
    assert composed.stdout.strip() == "ewc", composed.stderr[-2000:]
    rejected = run([str(site / "bin" / "vlacrl-train"), "runner.max_epochs=-1"], empty, site)  # composed, validated
    assert rejected.returncode == 2, rejected.stdout[-2000:] + rejected.stderr[-2000:]
    assert rejected.stderr.strip() == "error: runner.max_epochs must be an integer >= 1, got -1"
    helped = run([str(site / "bin" / "vlacrl-crl"), "--help"], empty, site)
    assert helped.returncode == 0 and "crl: crl_vla, der, er, ewc" in helped.stdout, helped.stderr[-2000:]
