"""Which simulator a config means: the one place that maps ``env.<split>.simulator_type`` to a family.

``simulator_type`` is the reference's own key (RLinf's env configs carry ``simulator_type: libero``); a missing
key means LIBERO. Families are imported on first use, so naming ``probe`` never imports LIBERO and vice versa.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Mapping

from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.simulator import Simulator

#: name → ``module:class`` of its :class:`Simulator`; a new simulator is one package plus one line here.
SIMULATORS: dict[str, str] = {
    "libero": "vlacrl.envs.libero.simulator:LiberoSimulator",
    "probe": "vlacrl.envs.probe.simulator:ProbeSimulator",
}
DEFAULT_SIMULATOR = "libero"
KEY = "simulator_type"


@functools.lru_cache(maxsize=None)
def get_simulator(name: str) -> Simulator:
    """The family registered as ``name``; an unknown name is one :class:`EnvConfigError` listing the choices."""
    if name not in SIMULATORS:
        raise EnvConfigError(f"unknown simulator {name!r}; choose one of {sorted(SIMULATORS)}")
    module_name, class_name = SIMULATORS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def simulator_name(env_cfg: Mapping[str, Any] | None) -> str:
    """``env_cfg[simulator_type]`` (default ``libero``) of one resolved ``env.<split>`` section."""
    value = (env_cfg or {}).get(KEY) or DEFAULT_SIMULATOR
    return str(value)


def simulator_for(env_cfg: Mapping[str, Any] | None) -> Simulator:
    """The :class:`Simulator` of one ``env.<split>`` section."""
    return get_simulator(simulator_name(env_cfg))


def split_simulator(cfg: Mapping[str, Any], split: str) -> Simulator:
    """The :class:`Simulator` of ``env.<split>`` in a whole (resolved or composed) config."""
    return simulator_for(cfg["env"][split])


def suite_task_ids(env_cfg: Mapping[str, Any]) -> list[int]:
    """Every task id of the suite of an ``env.<split>`` section."""
    return list(range(simulator_for(env_cfg).num_tasks(str(env_cfg["task_suite_name"]))))


def task_ids_of(env_cfg: Mapping[str, Any]) -> list[int]:
    """``fixed_task_ids`` of an ``env.<split>`` section, or every task of its suite."""
    fixed = env_cfg.get("fixed_task_ids")
    return [int(t) for t in fixed] if fixed is not None else suite_task_ids(env_cfg)


def simulator_of_suite(suite: str) -> Simulator:
    """The family whose suites include ``suite`` (LIBERO when no family claims it, so its error names it)."""
    for name in SIMULATORS:
        simulator = get_simulator(name)
        if suite in simulator.suite_task_counts:
            return simulator
    return get_simulator(DEFAULT_SIMULATOR)


def prepare_simulators(cfg: Mapping[str, Any]) -> None:
    """Driver-side set-up of the simulators of ``env.train`` and ``env.eval`` (each once)."""
    simulators = {}
    for split in ("train", "eval"):
        try:
            simulators.setdefault(simulator_name(cfg["env"][split]), split_simulator(cfg, split))
        except EnvConfigError as exc:
            raise EnvConfigError(f"env.{split}.{KEY}: {exc}") from None
    for simulator in simulators.values():
        simulator.prepare()
