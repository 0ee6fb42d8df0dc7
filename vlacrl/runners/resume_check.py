"""Open every file of the checkpoint a run would resume from, before Ray starts (docs/reliability.md).

A damaged ``trainer_state.json``, adapter, value head or optimizer shard is one :class:`ConfigError` line that
names the file and the problem and says how to go on (delete the checkpoint: the run resumes from the one
before; or ``runner.resume=disable``), instead of a traceback from inside the actor worker. Tensors are not
read: JSON is parsed, safetensors headers opened, and each optimizer shard's size compared with the byte
ranges its ``.metadata`` index records.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlacrl.config.errors import ConfigError
from vlacrl.models.errors import LoraError

TRAINER_STATE = "trainer_state.json"


def _problem(ckpt: Path, what: str) -> ConfigError:
    return ConfigError(
        f"runner.resume: the checkpoint {ckpt} cannot be resumed: {what}; delete {ckpt} to resume from the "
        "checkpoint before it, or set runner.resume=disable to start over"
    )


def check_trainer_state(ckpt: Path) -> None:
    path = ckpt / TRAINER_STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _problem(ckpt, f"{path.name} is unreadable or not JSON ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        raise _problem(ckpt, f"{path.name} has no integer 'global_step'")


def check_safetensors(ckpt: Path, path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            list(handle.keys())
    except (SafetensorError, OSError) as exc:
        raise _problem(ckpt, f"{path} is corrupted or truncated ({exc})") from None


def check_optimizer(ckpt: Path, optim_dir: Path) -> None:
    """The DCP index opens and every byte range it records lies inside its shard file."""
    from torch.distributed.checkpoint import FileSystemReader

    try:
        storage = FileSystemReader(str(optim_dir)).read_metadata().storage_data
    except Exception as exc:  # noqa: BLE001 - DCP raises several types for a missing or garbled index
        raise _problem(ckpt, f"the optimizer index {optim_dir / '.metadata'} is missing or damaged ({exc})") from None
    ends: dict[str, int] = {}
    for info in storage.values():
        ends[info.relative_path] = max(ends.get(info.relative_path, 0), int(info.offset) + int(info.length))
    for name, end in sorted(ends.items()):
        shard = optim_dir / name
        size = shard.stat().st_size if shard.is_file() else -1
        if size < end:
            found = "missing" if size < 0 else f"{size} bytes, its index needs {end}"
            raise _problem(ckpt, f"the optimizer shard {shard} is {found}")


def check_resumable(ckpt: Path) -> None:
    """Raise :class:`ConfigError` when a file the resumed run would load from ``ckpt`` is damaged."""
    from vlacrl.models.lora import check_adapter_dir

    ckpt = Path(ckpt)
    check_trainer_state(ckpt)
    actor = ckpt / "actor"
    if (actor / "adapter_config.json").exists():
        try:
            check_adapter_dir(actor)
        except LoraError as exc:
            raise _problem(ckpt, str(exc)) from None
    if (actor / "value_head.safetensors").exists():
        check_safetensors(ckpt, actor / "value_head.safetensors")
    if (actor / "optim").is_dir():
        check_optimizer(ckpt, actor / "optim")
