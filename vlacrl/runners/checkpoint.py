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

import torch

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


def write_adapter(peft_model, full_state: dict[str, torch.Tensor], out_dir: Path) -> None:
    """Write a PEFT adapter dir from an unsharded state dict of the PEFT model (rank 0 only)."""
    from peft.utils import get_peft_model_state_dict  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    adapter = get_peft_model_state_dict(peft_model, state_dict=full_state, save_embedding_layers=False)
    save_file({k: v.contiguous() for k, v in adapter.items()}, str(out_dir / "adapter_model.safetensors"))
    peft_model.peft_config["default"].save_pretrained(str(out_dir))
    head = {k.split("value_head.", 1)[1]: v.contiguous() for k, v in full_state.items() if "value_head." in k}
    if head:
        save_file(head, str(out_dir / "value_head.safetensors"))


def save_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, out_dir: Path) -> None:
    """Sharded AdamW state with torch.distributed.checkpoint (collective over the actor ranks)."""
    import torch.distributed.checkpoint as dcp  # noqa: PLC0415
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict  # noqa: PLC0415

    dcp.save({"optim": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(out_dir))


def load_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ckpt_dir: Path) -> None:
    import torch.distributed.checkpoint as dcp  # noqa: PLC0415
    from torch.distributed.checkpoint.state_dict import (  # noqa: PLC0415
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    state = {"optim": get_optimizer_state_dict(model, optimizer)}
    # Parameters that never received a gradient (LoRA on the unused last ViT block, SigLIP's attention
    # pool) have no saved AdamW state; loading gives them an initialised one, removed again below so the
    # optimizer looks exactly as in an uninterrupted run.
    planner = dcp.DefaultLoadPlanner(allow_partial_load=True)
    dcp.load(state, checkpoint_id=str(ckpt_dir), planner=planner)
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state["optim"])
    saved = dcp.FileSystemReader(str(ckpt_dir)).read_metadata().state_dict_metadata
    for name, param in model.named_parameters():
        if param in optimizer.state and f"optim.state.{name}.step" not in saved:
            del optimizer.state[param]


def load_value_head(model: torch.nn.Module, adapter_dir: Path) -> bool:
    """Copy saved value-head weights into ``model`` (full tensors); False when none were saved."""
    from safetensors.torch import load_file  # noqa: PLC0415

    path = adapter_dir / "value_head.safetensors"
    from vlacrl.models.lora import base_module  # noqa: PLC0415

    head = getattr(base_module(model), "value_head", None)
    if head is None or not path.exists():
        return False
    head.load_state_dict(load_file(str(path)))
    return True


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
