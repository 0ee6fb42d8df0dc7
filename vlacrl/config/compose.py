"""Compose a config from ``configs/`` outside of a Hydra main (tests, tools, launchers)."""

from __future__ import annotations

from omegaconf import DictConfig

from vlacrl.config.resolvers import register_resolvers
from vlacrl.paths import config_dir


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with Hydra overrides (``key=value``, ``+key=value``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))
