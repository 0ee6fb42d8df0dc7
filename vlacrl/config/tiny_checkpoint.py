"""When a run makes the tiny checkpoint its config points at (``actor.create_tiny_checkpoint``).

``auto`` (the CPU configs' default) makes it only at the repository's ``model/`` folder, where those configs
point: a mistyped ``actor.checkpoint_load_path`` elsewhere is then the usual "model directory does not exist"
error instead of a random model written at the typo. ``true`` makes it wherever the path points (the user asked
for it), ``false`` never. The checkpoint is written only after the config has been validated
(``vlacrl.runners.session.validate_and_prepare``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from vlacrl.config.errors import ConfigError
from vlacrl.config.family import policy_family
from vlacrl.paths import repo_root

MODES = ("auto", "true", "false")


def tiny_checkpoint_mode(cfg: DictConfig) -> str:
    """``auto``, ``true`` or ``false`` (a missing key is ``false``); any other value is a :class:`ConfigError`."""
    value = cfg.get("actor", {}).get("create_tiny_checkpoint", False)
    text = str(value).lower()
    if text not in MODES:
        raise ConfigError(f"actor.create_tiny_checkpoint must be auto, true or false, got {value!r}")
    return text


def checkpoint_path(cfg: DictConfig) -> Path:
    return Path(str(cfg.actor.checkpoint_load_path))


def checkpoint_present(cfg: DictConfig) -> bool:
    """``actor.checkpoint_load_path`` holds a checkpoint of the configured family."""
    return policy_family(cfg).checkpoint_present(checkpoint_path(cfg))


def in_model_folder(path: Path) -> bool:
    return (repo_root() / "model").resolve() in path.resolve().parents


def tiny_checkpoint_pending(cfg: DictConfig) -> bool:
    """The checkpoint is missing and this run will make it."""
    mode = tiny_checkpoint_mode(cfg)
    if mode == "false" or checkpoint_present(cfg):
        return False
    return mode == "true" or in_model_folder(checkpoint_path(cfg))


def missing_checkpoint_hint(cfg: DictConfig) -> str:
    """Why ``auto`` did not make the missing checkpoint, for the error message ('' when it does not apply)."""
    if tiny_checkpoint_mode(cfg) != "auto" or checkpoint_present(cfg):
        return ""
    return (
        f" (actor.create_tiny_checkpoint=auto makes a tiny checkpoint only under {repo_root() / 'model'}; "
        "set actor.create_tiny_checkpoint=true to make one at this path)"
    )
