"""Where the checkout lives (configs, model/, LIBERO/ and runs/ are found relative to it)."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The vlacrl checkout that holds this package (editable installs), or the CWD otherwise."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").exists() else Path.cwd()
