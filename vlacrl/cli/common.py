"""Helpers every console command shares: the configs folder and clean error reporting."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from omegaconf import DictConfig

from vlacrl.config.resolvers import register_resolvers
from vlacrl.config.validate import ConfigError
from vlacrl.envs.libero.errors import EnvConfigError, LiberoSetupError, RenderBackendError
from vlacrl.envs.libero.setup import repo_root
from vlacrl.models.errors import LoraError, ModelDirError

register_resolvers()
USER_ERRORS = (ConfigError, EnvConfigError, LiberoSetupError, RenderBackendError, ModelDirError, LoraError)


def config_path() -> str:
    """``configs/`` of this checkout (Hydra's config path)."""
    return str(repo_root() / "configs")


def first_worker_error(exc: BaseException) -> str:
    """The message of the first real error behind Ray's wrappers."""
    import ray  # noqa: PLC0415

    while isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        exc = exc.cause
    return str(exc).strip()


def run_guarded(fn: Callable[[DictConfig], int], cfg: DictConfig) -> int:
    """Run ``fn``; user errors → one line and exit 2, worker failures → the first real error and exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return fn(cfg)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - everything else is reported once, without the cascade
        import ray  # noqa: PLC0415

        if isinstance(exc, (ray.exceptions.RayError,)):
            print(f"error: a worker failed: {first_worker_error(exc)}", file=sys.stderr)
            return 1
        raise


def hydra_entry(fn: Callable[[DictConfig], int], config_name: str = "cpu_tiny") -> Callable[[], None]:
    """A console-script ``main`` that composes the Hydra config from ``configs/`` and runs ``fn`` guarded."""
    import hydra  # noqa: PLC0415

    @hydra.main(config_path=config_path(), config_name=config_name, version_base=None)
    def _main(cfg: DictConfig) -> None:
        sys.exit(run_guarded(fn, cfg))

    return _main
