"""OmegaConf resolvers used by the configs (the reference's names, plus ``repo_path``)."""

from __future__ import annotations

from omegaconf import OmegaConf

from vlacrl.paths import repo_root

RESOLVERS = {
    "multiply": lambda x, y: x * y,
    "int_div": lambda x, y: x // y,
    "subtract": lambda x, y: x - y,
    "not": lambda x: not x,
    "repo_path": lambda: str(repo_root()),
}


def register_resolvers() -> None:
    """Register every resolver once per process (safe to call again)."""
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
