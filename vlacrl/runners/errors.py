"""Failures that end a run, reported to the user as one ``error:`` line (``vlacrl.cli.common.run_guarded``).

* :class:`WorkerDiedError`: a Ray worker process died (SIGKILL, the OOM killer, a native crash). The
  driver maps Ray's ``ActorDiedError`` (and the cascade of errors it causes in other workers' tasks)
  to the worker's role, rank, pid and log file with :func:`ray_get`.
* :class:`NodeLostError`: a Ray node died (its raylet is gone: the machine failed, the node was removed); the
  workers on it died with it. One line names the node and the roles it ran (``vlacrl.runners.nodes``).
* :class:`CheckpointSaveError`: writing a checkpoint failed (e.g. no space left on device); the
  previous checkpoint is untouched (``vlacrl.runners.checkpoint.save_atomic``).

Only the standard library is imported here (the CLIs import this module before Ray and torch).
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

ROLE_OF_NAME = re.compile(r"^(actor|rollout|env_train|env_eval)_(\d+)$")
ROLE_LABELS = {"actor": "actor", "rollout": "rollout", "env_train": "env", "env_eval": "eval env"}


class RunFailure(RuntimeError):
    """A failure that ends the run with one line for the user (exit code 1), no traceback."""


class WorkerDiedError(RunFailure):
    """A worker process died without a Python error (its Ray actor is gone)."""

    def __init__(self, role: str, rank: int | None, pid: int | None, log_file: str | None, detail: str):
        who = f"{role} worker rank {rank}" if rank is not None else f"{role} worker"
        pid_text = f" (pid {pid})" if pid else ""
        log_text = f"; its log: {log_file}" if log_file else ""
        super().__init__(f"{who} died{pid_text}: {detail}{log_text}")
        self.role, self.rank, self.pid, self.log_file, self.detail = role, rank, pid, log_file, detail

    def __reduce__(self):
        return (type(self), (self.role, self.rank, self.pid, self.log_file, self.detail))


class NodeLostError(RunFailure):
    """A Ray node was lost; ``roles`` lists what ran on it (``"env ranks 2-3"``), ``resume`` what to do next."""

    def __init__(self, node_id: str, ip: str | None = None, roles: str = "", resume: str = ""):
        where = f" ({ip})" if ip else ""
        ran = f"; it ran {roles}" if roles else ""
        after = f"; {resume}" if resume else ""
        super().__init__(f"Ray node {node_id[:12]}{where} was lost{ran}{after}")
        self.node_id, self.ip, self.roles, self.resume = node_id, ip, roles, resume

    def __reduce__(self):
        return (type(self), (self.node_id, self.ip, self.roles, self.resume))


class CheckpointSaveError(RunFailure):
    """A checkpoint could not be written; names the reason and the previous (intact) checkpoint."""

    def __init__(self, reason: str, previous: str | Path | None):
        kept = f"the previous checkpoint {previous} is intact" if previous else "there is no earlier checkpoint"
        super().__init__(f"checkpoint save failed: {reason}; {kept}")
        self.reason, self.previous = reason, previous

    def __reduce__(self):
        return (type(self), (self.reason, self.previous))


def ray_get(refs: Any, groups: Any = None) -> Any:
    """``ray.get(refs)``; a dead worker (directly, or behind another task's error) → :class:`WorkerDiedError`.

    ``groups`` (a ``WorkerGroups``) maps Ray actor ids to role and rank; without it the actor's name
    (``rollout_0``, ``env_train_1``, ...) is used.
    """
    import ray

    try:
        return ray.get(refs)
    except ray.exceptions.RayError as exc:
        died = actor_death(exc)
        if died is None:
            raise
        node_id = dead_node_id(str(died))
        if node_id is not None:
            raise NodeLostError(node_id) from None
        raise worker_died(died, groups) from None


NODE_DIED = re.compile(r"its node has died\.\s*Node Id:\s*([0-9a-fA-F]+)")


def dead_node_id(text: str) -> str | None:
    """The node id in Ray's "The actor died because its node has died. Node Id: <hex>", else None."""
    match = NODE_DIED.search(text)
    return match.group(1) if match else None


def actor_death(exc: BaseException):
    """The ``RayActorError`` behind ``exc`` (following ``RayTaskError`` causes), or None."""
    import ray

    for _ in range(32):  # bounded: a cause chain never loops, but be safe
        cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
        if cause is None or cause is exc:
            break
        exc = cause
    return exc if isinstance(exc, ray.exceptions.RayActorError) else None


def worker_died(exc, groups: Any = None) -> WorkerDiedError:
    """Build the one-line error for a dead Ray actor: role, rank, pid, log file, what happened."""
    text = str(exc)
    role, rank = _role_and_rank(getattr(exc, "actor_id", None), text, groups)
    pid_match = re.search(r"^\s*pid: (\d+)", text, re.MULTILINE)
    pid = int(pid_match.group(1)) if pid_match else None
    if getattr(exc, "actor_init_failed", False):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        detail = f"it failed to start: {lines[-1] if lines else 'unknown error'}"
    else:
        detail = (
            "its process ended without a Python error (killed by a signal, e.g. by the OOM killer, or a "
            "crash in native code)"
        )
    return WorkerDiedError(role, rank, pid, worker_log_file(pid), detail)


def _role_and_rank(actor_id: str | None, text: str, groups: Any) -> tuple[str, int | None]:
    """Role and rank of the actor: from the worker groups, else from its Ray name, else unknown."""
    if groups is not None and actor_id:
        found = groups.member(actor_id)
        if found is not None:
            return found
    name = re.search(r"^\s*name: (\S+)", text, re.MULTILINE)
    match = ROLE_OF_NAME.match(name.group(1)) if name else None
    if match:
        return ROLE_LABELS[match.group(1)], int(match.group(2))
    return "a", None


def ray_logs_dir() -> Path | None:
    """The log directory of the Ray session this driver is connected to (None when unknown)."""
    try:
        import ray

        node = ray._private.worker._global_node  # noqa: SLF001 - the session's own log dir (no public API)
        return Path(node.get_logs_dir_path()) if node is not None else None
    except Exception:  # noqa: BLE001 - best effort: only used to point at a log file
        return None


def worker_log_file(pid: int | None) -> str | None:
    """Ray's stderr file of the worker process ``pid`` (``worker-<id>-<job>-<pid>.err``), if found."""
    logs = ray_logs_dir()
    if logs is None:
        return None
    if pid:
        found = sorted(glob.glob(str(logs / f"worker-*-{pid}.err")))
        if found:
            return found[-1]
    return str(logs)
