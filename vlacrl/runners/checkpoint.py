"""Checkpoints: ``<log_path>/checkpoints/global_step_<N>/`` written atomically.

Layout of one checkpoint (N = 1-based global step, as the reference)::

    global_step_N/
      actor/                        PEFT adapter dir: adapter_config.json + adapter_model.safetensors
        value_head.safetensors      value-head weights (when the model has one)
        optim/                      AdamW state, torch.distributed.checkpoint (sharded, one file per rank)
      trainer_state.json            global step, env reset-state samplers, rollout RNG states
      COMPLETE                      written last; a directory without it is ignored

Everything is written into ``global_step_N.tmp-<pid>/``, flushed to disk (fsync), marked COMPLETE and
renamed at the end (:func:`save_atomic`), so a save interrupted at any point (an exception, SIGKILL, a
full disk) leaves the previous checkpoint as the latest loadable one. Leftover ``*.tmp-*`` / ``*.old-*``
directories are never loaded and are removed by the next save. See docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from vlacrl.runners.errors import CheckpointSaveError, RunFailure

logger = logging.getLogger(__name__)

COMPLETE = "COMPLETE"
STEP_DIR = re.compile(r"^global_step_(\d+)$")
LEFTOVER_DIR = re.compile(r"^global_step_\d+\.(tmp|old)-.+$")  # an interrupted save / a replaced checkpoint


def checkpoint_root(log_path: str | Path) -> Path:
    return Path(log_path) / "checkpoints"


def step_dir(log_path: str | Path, step: int) -> Path:
    return checkpoint_root(log_path) / f"global_step_{step}"


def temp_dir(log_path: str | Path, step: int, token: str) -> Path:
    return checkpoint_root(log_path) / f"global_step_{step}.tmp-{token}"


def latest_checkpoint(log_path: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under ``log_path``, or None."""
    root = checkpoint_root(log_path)
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and (p / COMPLETE).exists()]
    return max(found)[1] if found else None


def _phase(name: str) -> None:
    """A no-op between the phases of :func:`save_atomic` ("started", "written", "state", "marked",
    "set_aside", "renamed"): the tests make a save fail or SIGKILL itself exactly there."""


def _write_synced(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` and flush it to disk."""
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temp file, fsync, rename): a reader sees old or new, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_synced(tmp, text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: str | Path) -> None:
    """Flush one file or directory to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` and the directories themselves (against power loss / an OS crash)."""
    for dirpath, _, filenames in os.walk(root):
        for name in [*filenames, "."]:
            _fsync(os.path.join(dirpath, name))


def clean_leftovers(log_path: str | Path) -> list[Path]:
    """Remove ``global_step_N.tmp-*`` (interrupted saves) and ``.old-*`` (replaced) dirs; returns them."""
    root = checkpoint_root(log_path)
    stale = [p for p in root.iterdir() if LEFTOVER_DIR.match(p.name)] if root.is_dir() else []
    for path in stale:
        logger.info("removing %s (left by an interrupted checkpoint save)", path)
        shutil.rmtree(path, ignore_errors=True)
    return stale


def finalize(tmp: Path, final: Path, trainer_state: dict[str, Any]) -> Path:
    """Write the trainer state and the completion marker, flush, then rename ``tmp`` → ``final``.

    An existing ``final`` (the same step saved again, after resuming from an older checkpoint) is first
    renamed aside, then removed; a failure in between renames it back. At every instant ``latest_checkpoint``
    finds a complete checkpoint (only a SIGKILL in that window leaves the step before as the latest).
    """
    _write_synced(tmp / "trainer_state.json", json.dumps(trainer_state, indent=2))
    _phase("state")
    _fsync_tree(tmp)
    _write_synced(tmp / COMPLETE, "ok\n")
    _phase("marked")
    aside = final.with_name(f"{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(aside)
    try:
        if aside.exists():
            _phase("set_aside")
        tmp.rename(final)
    except BaseException:
        if aside.exists() and not final.exists():  # put the replaced checkpoint back
            aside.rename(final)
        raise
    _fsync(final.parent)
    _phase("renamed")
    shutil.rmtree(aside, ignore_errors=True)
    logger.info("checkpoint written: %s", final)
    return final


def save_atomic(
    log_path: str | Path, step: int, write: Callable[[Path], None], trainer_state: Callable[[], dict[str, Any]]
) -> Path:
    """Save checkpoint ``step``: ``write(tmp)`` fills the temp dir (the actor ranks write ``actor/``), then
    ``trainer_state()`` is added and the dir is finalized; returns ``global_step_<step>``.

    Any failure removes the temp dir and raises :class:`CheckpointSaveError` naming the reason and the
    previous checkpoint, which is untouched (a dead worker stays a ``WorkerDiedError``).
    """
    previous = latest_checkpoint(log_path)
    clean_leftovers(log_path)
    tmp = temp_dir(log_path, step, str(os.getpid()))
    try:
        tmp.mkdir(parents=True)
        _phase("started")
        write(tmp)
        _phase("written")
        return finalize(tmp, step_dir(log_path, step), trainer_state())
    except RunFailure:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of a save is reported the same way
        shutil.rmtree(tmp, ignore_errors=True)
        logger.error("checkpoint save of step %d failed: %s", step, exc)
        raise CheckpointSaveError(failure_reason(exc), previous) from exc


def failure_reason(exc: BaseException) -> str:
    """One line for ``exc``: the worker error behind Ray's wrapper (role, rank, first line), or type: message."""
    cause = exc
    while getattr(cause, "cause", None) is not None and cause.cause is not cause:  # RayTaskError → its cause
        cause = cause.cause
    if hasattr(cause, "role") and hasattr(cause, "message"):  # vlacrl.workers.errors.WorkerError
        first = str(cause.message).strip().splitlines()
        return f"{cause.role} worker rank {cause.rank}: {first[0] if first else 'unknown error'}"
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    return json.loads((ckpt / "trainer_state.json").read_text())
