"""Where the checkout lives (configs, model/, LIBERO/ and runs/ are found relative to it)."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """The Hydra configs, shipped inside the package (``vlacrl/configs``; ``configs/`` of a checkout links there)."""
    return Path(__file__).resolve().parent / "configs"


def repo_root() -> Path:
    """The vlacrl checkout that holds this package (editable installs), or the CWD otherwise."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").exists() else Path.cwd()


def output_dir_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be used as an output directory (it or an ancestor is a file, or the nearest existing
    ancestor is not writable), or None. Creates nothing."""
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            return f"{path} is a file, not a directory"
        return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{path} cannot be created: {ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {ancestor} is not writable"
    return None
