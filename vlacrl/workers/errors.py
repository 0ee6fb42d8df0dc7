"""Errors raised inside workers carry the worker's role and rank to the driver."""

from __future__ import annotations

import functools
import os
import traceback


class WorkerError(RuntimeError):
    """The first real error of a worker: role, rank, exception and its traceback."""

    def __init__(self, role: str, rank: int, message: str, log_file: str | None = None):
        first, newline, rest = message.partition("\n")  # the log file goes at the end of the first line
        where = f" (log: {log_file})" if log_file else ""
        super().__init__(f"{role} worker rank {rank}: {first}{where}{newline}{rest}")
        self.role, self.rank, self.message, self.log_file = role, rank, message, log_file

    def __reduce__(self):  # crosses process boundaries (Ray) intact
        return (type(self), (self.role, self.rank, self.message, self.log_file))


def own_log_file() -> str | None:
    """This process's stderr file when it is a Ray worker (``<session>/logs/worker-<id>-<job>-<pid>.err``)."""
    try:
        target = os.readlink("/proc/self/fd/2")
    except OSError:  # not Linux, or stderr is not a file
        return None
    name = os.path.basename(target)
    return target if name.startswith("worker-") and name.endswith(".err") else None


def annotated(method):
    """Decorate a worker method: any exception becomes a :class:`WorkerError` naming the worker.

    The worker object must have ``role`` and ``rank`` attributes (and optionally ``log_file``; by default
    the Ray worker's own stderr log, :func:`own_log_file`).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except WorkerError:
            raise
        except Exception as exc:  # noqa: BLE001 - annotate every failure, keep the traceback text
            detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            log_file = getattr(self, "log_file", None) or own_log_file()
            raise WorkerError(self.role, self.rank, detail, log_file) from None

    return wrapper
