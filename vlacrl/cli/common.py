"""Helpers every console command shares: the configs folder and clean error reporting."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from vlacrl.config.resolvers import register_resolvers
from vlacrl.config.validate import ConfigError
from vlacrl.envs.errors import EnvConfigError, SimulatorUnavailableError
from vlacrl.models.errors import LoraError, ModelDirError
from vlacrl.paths import config_dir, output_dir_problem
from vlacrl.runners.errors import RunFailure

register_resolvers()
#: Bad input: one ``error:`` line, exit code 2 (see docs/reliability.md, "Bad input").
USER_ERRORS = (ConfigError, EnvConfigError, SimulatorUnavailableError, ModelDirError, LoraError)
#: Bad input too, from modules that import torch (``vlacrl.data`` does): matched only once their module is loaded
#: (it raised them).
LAZY_USER_ERRORS = (
    ("vlacrl.data.errors", "ReplayDataError"),
    ("vlacrl.crl.registry", "UnknownMethodError"),
    ("vlacrl.crl.common", "MethodConfigError"),
    ("vlacrl.crl.replay", "ReplayConfigError"),
    ("vlacrl.distributed.cluster", "ClusterError"),  # placement time-out, cannot join the cluster
    ("vlacrl.models.errors", "CNNCheckpointError"),
)
#: Errors of a full or read-only disk, reported in one line (exit code 1).
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
DISK_FULL_HINT = (
    "free space (or set runner.logger.log_path to another disk) and run the same command again: with "
    "runner.resume=auto it continues from the last complete checkpoint, which a failed save leaves intact"
)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one ``error:`` line (exit code 2) instead of the usage block and a message."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def output_dir(text: str) -> Path:
    """An argparse ``type``: a directory this command may create or write (nothing is created yet)."""
    problem = output_dir_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def int_list(text: str) -> list[int]:
    """An argparse ``type``: comma-separated integers (``0,3,5``)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers (e.g. 0,3,5)") from None


def config_path() -> str:
    """The package's ``configs/`` (Hydra's config path)."""
    return str(config_dir())


def first_worker_error(exc: BaseException) -> str:
    """The message of the first real error behind Ray's wrappers."""
    import ray

    while isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        exc = exc.cause
    return str(exc).strip()


def user_error_types() -> tuple[type[BaseException], ...]:
    """:data:`USER_ERRORS` plus the :data:`LAZY_USER_ERRORS` whose module is loaded."""
    lazy = [getattr(sys.modules[module], name) for module, name in LAZY_USER_ERRORS if module in sys.modules]
    return (*USER_ERRORS, *lazy)


def disk_error_message(exc: OSError) -> str:
    """One line for an error of a full or read-only disk, naming the file and what to do."""
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on device{where}: {DISK_FULL_HINT}"
    return f"{exc.strerror or exc}{where}: choose a writable runner.logger.log_path (or fix the permissions)"


def error_report(exc: Exception) -> tuple[int, str] | None:
    """(exit code, one-line message) for an error the user can act on, or None for a bug (re-raised)."""
    if isinstance(exc, RunFailure):  # a worker died, a checkpoint save failed: already one line
        return 1, str(exc)
    ray = sys.modules.get("ray")
    if ray is not None and isinstance(exc, ray.exceptions.RayError):  # before the user errors: a RayTaskError
        message = first_worker_error(exc)  # also derives from its cause's class, with the remote traceback in str()
        if "[Errno 28]" in message or "No space left on device" in message:
            return 1, f"a worker ran out of disk space ({message.splitlines()[0]}): {DISK_FULL_HINT}"
        return 1, f"a worker failed: {message}"
    if isinstance(exc, user_error_types()):
        return 2, " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return 1, disk_error_message(exc)
    return None


def run_guarded(fn: Callable[[DictConfig], int], cfg: DictConfig) -> int:
    """Run ``fn``; user errors → one line and exit 2, worker failures and a full disk → one error and exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return fn(cfg)
    except Exception as exc:  # noqa: BLE001 - everything known is reported once, without the cascade
        report = error_report(exc)
        if report is None:
            raise
        print(f"error: {report[1]}", file=sys.stderr)
        return report[0]


def unknown_group_choice(args: list[str]) -> str | None:
    """A one-line problem for an override ``group=name`` whose group is a folder of ``configs/`` without
    ``name.yaml`` (``crl=bogus``), else None. Other overrides are left to Hydra."""
    root = config_dir()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if not key or "." in key or value in ("", "null") or any(c in value for c in "[]{}(),'\" $/"):
            continue
        choices = sorted(p.stem for p in (root / key).glob("*.yaml")) if (root / key).is_dir() else []
        if choices and value not in choices:
            return f"{key}={value}: there is no configs/{key}/{value}.yaml; choose one of {choices}"
    return None


def split_hydra_args(args: list[str], default_config: str) -> tuple[str, list[str]] | None:
    """(config name, overrides) of a plain run's command line; None when it has other Hydra options
    (``--help``, ``--cfg``, ``-m``, …), which Hydra handles itself."""
    name, overrides, rest = default_config, [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("--config-name", "-cn") and rest:
            name = rest.pop(0)
        elif arg.startswith("--config-name="):
            name = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            return None
        else:
            overrides.append(arg)
    return name, overrides


def composition_problem(config_name: str, overrides: list[str]) -> str | None:
    """Hydra's composition error (a key that does not exist, an override it cannot parse) in one line, or None."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from vlacrl.config.compose import compose

    try:
        compose(config_name, overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = exc.__cause__
        if cause is not None and "not in struct" in str(cause):
            key = str(cause).split("full_key: ", 1)[-1].split()[0]
            return f"{lines[0].rstrip('.')}: {key} is not a key of this config ({'; '.join(lines[1:])}){_guess(key)}"
        return " ".join(lines)
    return None


def _guess(key: str) -> str:
    """`` (did you mean crl.x?)`` for a mistyped method key, from every method's parameter names."""
    import difflib

    if not key.startswith("crl."):
        return ""
    from vlacrl.crl.params import METHOD_PARAMS, key_types

    known = sorted({name for params in METHOD_PARAMS.values() for name in key_types(params)})
    match = difflib.get_close_matches(key[4:], known, n=1)
    return f"; did you mean crl.{match[0]}?" if match else ""


def hydra_entry(fn: Callable[[DictConfig], int], config_name: str = "cpu_tiny") -> Callable[[], None]:
    """A console-script ``main`` that composes the Hydra config from ``configs/`` and runs ``fn`` guarded."""
    import hydra

    @hydra.main(config_path=config_path(), config_name=config_name, version_base=None)
    def _main(cfg: DictConfig) -> None:
        sys.exit(run_guarded(fn, cfg))

    def main() -> None:
        problem = unknown_group_choice(sys.argv[1:])
        plain = split_hydra_args(sys.argv[1:], config_name)
        if problem is None and plain is not None:
            problem = composition_problem(*plain)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
        _main()

    return main
