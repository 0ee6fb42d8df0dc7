"""Run many simulations of one simulator, in sub-processes (LIBERO) or in this process (the probe world).

A simulation is any object with the methods the vector env calls (``reset``, ``step_chunk``,
``get_sim_state``, ``close``; see :mod:`vlacrl.envs.simulator`), built as ``factory(sim_config, task_id)``.
Sub-processes get the factory as an importable ``"module:Class"`` string.

Each sub-process owns a contiguous slice of the envs and steps them serially; processes step in
parallel. A command is sent to every involved process first and the replies are gathered after,
so all processes work at once. A sub-process that raises sends back its traceback (and exits); one
that dies (killed, segfault) is detected from its closed pipe. :meth:`SubprocSimPool.call` raises
both as :class:`EnvWorkerError` naming the env index; :meth:`SubprocSimPool.call_collect` returns
them as :class:`SimFailure` records instead, and :meth:`SubprocSimPool.restart` replaces a failed
process with a fresh one for the same envs (the caller restores their episodes, see
``VectorEnv`` and docs/reliability.md).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from vlacrl.envs.errors import EnvWorkerError

logger = logging.getLogger(__name__)


def default_num_processes(num_envs: int, memory_per_sim_gb: float, available_gb: float | None = None) -> int:
    """As many processes as envs, capped so that their memory (``memory_per_sim_gb`` each) fits in 80 % of
    the available RAM."""
    if available_gb is None:
        import psutil

        available_gb = psutil.virtual_memory().available / 2**30
    by_memory = max(1, int(0.8 * available_gb / memory_per_sim_gb))
    return max(1, min(num_envs, by_memory))


def import_factory(path: str) -> Callable:
    """``"package.module:Name"`` → that object."""
    module_name, name = path.split(":")
    return getattr(importlib.import_module(module_name), name)


def split_envs(num_envs: int, num_processes: int) -> list[list[int]]:
    """Contiguous, near-equal slices of env indices, one per process."""
    bounds = np.linspace(0, num_envs, num_processes + 1).round().astype(int)
    return [list(range(bounds[p], bounds[p + 1])) for p in range(num_processes) if bounds[p + 1] > bounds[p]]


def describe_exit_code(code: int | None) -> str:
    """``-9`` -> ``"exit code -9 (SIGKILL)"``; ``None`` (not reaped yet) -> ``"an unknown exit code"``."""
    if code is None:
        return "an unknown exit code"
    if code < 0:
        try:
            return f"exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"exit code {code} (signal {-code})"
    return f"exit code {code}"


@dataclass
class SimFailure:
    """One sub-process that failed during a call.

    Attributes:
        process: index of the sub-process (its slice in ``SubprocSimPool.slices``).
        env_index: the env that raised, or the first env of the process when it died.
        cause: what happened, e.g. ``"its sub-process (pid 7, envs [1]) died with exit code -9 (SIGKILL)"``
            or ``"exception in its sub-process:\n<traceback>"``.
        exit_code: the process's exit code when it died (negative: killed by that signal), else None.
    """

    process: int
    env_index: int
    cause: str
    exit_code: int | None = None

    def error(self, simulator: str = "") -> EnvWorkerError:
        return EnvWorkerError(self.env_index, self.cause, simulator)


def _apply(sims: dict, local: int, method: str, args: tuple) -> Any:
    return getattr(sims[local], method)(*args)


def apply_env(changes: dict[str, str | None], environ: dict | None = None) -> None:
    """Set environment variables (a None value deletes the variable)."""
    env = os.environ if environ is None else environ
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


def _worker_main(  # noqa: PLR0917 (a multiprocessing target takes its arguments by position)
    conn, env_indices: list[int], sim_config, task_ids: list[int], env_vars: dict, factory_path: str
) -> None:
    """Sub-process loop: build the sims, then serve ``(method, [(env_index, args), ...])`` calls."""
    apply_env(env_vars)
    current = env_indices[0]
    try:
        factory = import_factory(factory_path)  # after the env vars are set (renderers read them on import)

        sims = {}
        for current, task_id in zip(env_indices, task_ids):
            sims[current] = factory(sim_config, task_id)
        conn.send(("ok", None))
        while True:
            method, calls = conn.recv()
            if method == "close":
                for sim in sims.values():
                    sim.close()
                conn.send(("ok", None))
                return
            results = []
            for current, args in calls:
                results.append(_apply(sims, current, method, args))
            conn.send(("ok", results))
    except (EOFError, KeyboardInterrupt):
        return
    except BaseException:  # noqa: BLE001 - every failure goes back to the parent, annotated
        try:
            conn.send(("error", (current, traceback.format_exc())))
        except (BrokenPipeError, OSError):
            pass


class SubprocSimPool:
    """``num_envs`` sims spread over ``num_processes`` spawned sub-processes."""

    def __init__(
        self,
        sim_config,
        task_ids: Sequence[int],
        num_processes: int,
        env_vars: dict | None = None,
        *,
        factory: str,
        label: str = "",
    ):
        """
        Args:
            factory: ``"module:Class"`` of the simulation, imported in each sub-process.
            label: the simulator's name in error messages.
        """
        self.factory, self.label = factory, label
        self.num_envs = len(task_ids)
        self.slices = split_envs(self.num_envs, num_processes)
        self._owner = {i: p for p, envs in enumerate(self.slices) for i in envs}
        self._sim_config, self._env_vars = sim_config, dict(env_vars or {})
        self._conns, self._procs = [], []
        for envs in self.slices:
            conn, proc = self._spawn(envs, [int(task_ids[i]) for i in envs])
            self._conns.append(conn)
            self._procs.append(proc)
        try:
            for p in range(len(self.slices)):
                self._receive(p)
        except EnvWorkerError:
            self.close()
            raise

    def _spawn(self, envs: list[int], task_ids: list[int]):
        """Start one sub-process for ``envs``; returns its pipe end and process (not yet ready)."""
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_main,
            args=(child, envs, self._sim_config, task_ids, dict(self._env_vars), self.factory),
            daemon=True,
        )
        proc.start()
        child.close()
        return parent, proc

    @property
    def pids(self) -> list[int]:
        """Process id of each sub-process (one per slice)."""
        return [proc.pid for proc in self._procs]

    def process_of(self, env_index: int) -> int:
        """Index of the sub-process that owns ``env_index``."""
        return self._owner[env_index]

    def _receive_or_failure(self, p: int) -> tuple[Any, SimFailure | None]:
        """Process ``p``'s reply: ``(payload, None)``, or ``(None, failure)`` if it raised or died."""
        try:
            status, payload = self._conns[p].recv()
        except (EOFError, OSError, pickle.UnpicklingError):
            self._procs[p].join(timeout=5)
            code, pid = self._procs[p].exitcode, self._procs[p].pid
            cause = f"its sub-process (pid {pid}, envs {self.slices[p]}) died with {describe_exit_code(code)}"
            return None, SimFailure(p, self.slices[p][0], cause, code)
        if status == "error":
            env_index, tb = payload
            return None, SimFailure(p, env_index, f"exception in its sub-process:\n{tb}")
        return payload, None

    def _receive(self, p: int):
        payload, failure = self._receive_or_failure(p)
        if failure is not None:
            raise failure.error(self.label)
        return payload

    def call_collect(self, method: str, per_env_args: dict[int, tuple]) -> tuple[dict[int, Any], list[SimFailure]]:
        """Like :meth:`call`, but every process's reply is read and failures are returned, not raised.

        Returns:
            the results of the envs whose process answered, and one :class:`SimFailure` per failed
            process (its envs have no result; the process is dead or exiting: :meth:`restart` it).
        """
        by_proc: dict[int, list] = {}
        for env_index, args in per_env_args.items():
            by_proc.setdefault(self._owner[env_index], []).append((env_index, args))
        for p, calls in by_proc.items():
            try:
                self._conns[p].send((method, calls))
            except (BrokenPipeError, OSError):
                pass  # reported by _receive_or_failure below with the exit code
        results: dict[int, Any] = {}
        failures: list[SimFailure] = []
        for p, calls in by_proc.items():
            payload, failure = self._receive_or_failure(p)
            if failure is not None:
                failures.append(failure)
                continue
            for (env_index, _), value in zip(calls, payload):
                results[env_index] = value
        return results, failures

    def call(self, method: str, per_env_args: dict[int, tuple]) -> dict[int, Any]:
        """Call ``<sim>.<method>(*args)`` on each given env; all processes work in parallel.

        Raises:
            EnvWorkerError: for the first failed process (every process's reply is read first).
        """
        results, failures = self.call_collect(method, per_env_args)
        if failures:
            raise failures[0].error(self.label)
        return results

    def restart(self, p: int, task_ids: Sequence[int]) -> SimFailure | None:
        """Replace sub-process ``p`` (dead or not) by a fresh one building its envs for ``task_ids``.

        The new sims are freshly built, not reset: the caller resets (and replays) their episodes.

        Args:
            p: the process index (``SimFailure.process``).
            task_ids: one task id per env of the process, in ``slices[p]`` order.
        Returns:
            None once the new process is ready (``pids[p]`` is its id), or its failure if it could
            not build its sims.
        """
        old = self._procs[p]
        if old.is_alive():
            old.kill()
        old.join(timeout=10)
        self._conns[p].close()
        self._conns[p], self._procs[p] = self._spawn(self.slices[p], [int(t) for t in task_ids])
        _, failure = self._receive_or_failure(p)
        if failure is None:
            logger.info("restarted sim process %d (envs %s): pid %d -> %d", p, self.slices[p], old.pid, self.pids[p])
        return failure

    def close(self) -> None:
        for conn, proc in zip(self._conns, self._procs):
            if proc.is_alive():
                try:
                    conn.send(("close", []))
                    if conn.poll(30):
                        conn.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            conn.close()
        self._conns, self._procs = [], []


class InProcessSimPool:
    """The same interface with every sim in the calling process (the probe world, debugging, single-env tools).

    Nothing can be restarted here: a failing sim raises :class:`EnvWorkerError` at once.
    """

    def __init__(self, sim_config, task_ids: Sequence[int], factory: Callable, label: str = ""):
        self.label = label
        self.num_envs = len(task_ids)
        self.sims = {}
        for i, task_id in enumerate(task_ids):
            try:
                self.sims[i] = factory(sim_config, int(task_id))
            except Exception as exc:
                raise EnvWorkerError(i, f"{type(exc).__name__}: {exc}", label) from exc

    def call(self, method: str, per_env_args: dict[int, tuple]) -> dict[int, Any]:
        results = {}
        for env_index, args in per_env_args.items():
            try:
                results[env_index] = _apply(self.sims, env_index, method, args)
            except Exception as exc:
                raise EnvWorkerError(env_index, f"{type(exc).__name__}: {exc}", self.label) from exc
        return results

    def close(self) -> None:
        for sim in self.sims.values():
            sim.close()
        self.sims = {}
