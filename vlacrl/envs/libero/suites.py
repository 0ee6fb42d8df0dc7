"""LIBERO task suites: names, task counts, task specs and the fixed init states.

Suites are loaded with task order 0 (the identity order), as the reference does, so task ids
match ``libero_suite_task_map``.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from vlacrl.envs.errors import EnvConfigError

#: the paper's robustness suites → the suite whose tasks, BDDL files and init states they reuse; their camera,
#: lights or robot base differ through ``init_params`` (vlacrl/envs/libero/perturbations.py, docs/libero.md)
VARIANT_OF = {
    "libero_spatial_cam2": "libero_spatial",
    "libero_spatial_light2": "libero_spatial",
    "libero_spatial_pos2": "libero_spatial",
}
SUITE_TASK_COUNTS = {
    "libero_spatial": 10,
    "libero_object": 10,
    "libero_goal": 10,
    "libero_10": 10,
    "libero_90": 90,
    **dict.fromkeys(VARIANT_OF, 10),
}


@dataclass(frozen=True)
class TaskSpec:
    """One LIBERO task."""

    suite: str
    task_id: int
    name: str
    language: str  # the instruction the policy is prompted with
    bddl_file: Path


def validate_suite(suite: str) -> str:
    if suite not in SUITE_TASK_COUNTS:
        raise EnvConfigError(f"unknown LIBERO suite {suite!r}; choose one of {sorted(SUITE_TASK_COUNTS)}")
    return suite


def validate_task_ids(suite: str, task_ids: Iterable[int]) -> list[int]:
    """Check every id against the suite's task count; returns them as a list of ints."""
    count = SUITE_TASK_COUNTS[validate_suite(suite)]
    ids = [int(t) for t in task_ids]
    bad = [t for t in ids if not 0 <= t < count]
    if bad:
        raise EnvConfigError(f"task id(s) {bad} out of range for {suite}: it has tasks 0..{count - 1}")
    return ids


def _benchmark_module():
    from vlacrl.envs.libero.setup import ensure_libero_ready

    ensure_libero_ready()
    with contextlib.redirect_stdout(io.StringIO()):  # LIBERO prints "[info] using task orders"
        from libero.libero import benchmark
    return benchmark


def base_suite(suite: str) -> str:
    """The LIBERO suite whose tasks ``suite`` uses (itself, or the base of a robustness variant)."""
    return VARIANT_OF.get(validate_suite(suite), suite)


@functools.lru_cache(maxsize=None)
def _suite(suite: str):
    benchmark = _benchmark_module()
    with contextlib.redirect_stdout(io.StringIO()):
        return benchmark.get_benchmark_dict()[base_suite(suite)](task_order_index=0)


def num_tasks(suite: str) -> int:
    """Number of tasks LIBERO reports for ``suite`` (loads the suite)."""
    return _suite(suite).get_num_tasks()


def task_spec(suite: str, task_id: int) -> TaskSpec:
    (task_id,) = validate_task_ids(suite, [task_id])
    bench = _suite(suite)
    task = bench.get_task(task_id)
    return TaskSpec(suite, task_id, task.name, task.language, Path(bench.get_task_bddl_file_path(task_id)))


@functools.lru_cache(maxsize=None)
def init_states(suite: str, task_id: int) -> np.ndarray:
    """The task's fixed init states, [num_states (50), state_dim] float64 flattened MjSim states (a variant
    suite's are its base suite's)."""
    (task_id,) = validate_task_ids(suite, [task_id])
    if base_suite(suite) != suite:
        return init_states(base_suite(suite), task_id)
    states = np.asarray(_suite(suite).get_task_init_states(task_id))
    states.setflags(write=False)
    return states


def num_init_states(suite: str, task_id: int) -> int:
    return len(init_states(suite, task_id))


@dataclass(frozen=True)
class TaskData:
    """What a sim needs of one task: its spec and init states (sent to sim processes, so that they never import
    LIBERO's benchmark module, which imports torch: ~500 MB per process, docs/libero.md)."""

    spec: TaskSpec
    init_states: np.ndarray


def suite_task_data(suite: str) -> tuple[TaskData, ...]:
    """Every task of ``suite``, index = task id (libero_90: ~3 MB of init states)."""
    return tuple(TaskData(task_spec(suite, t), init_states(suite, t)) for t in range(num_tasks(suite)))
