"""Where a sequence that starts after the suite's first task continues from, as the reference's launchers do.

The reference's ``run_embodiment_<method>.sh k`` with k after the suite's first task (0; Object 5; LIBERO-10 3)
and no CHECKPOINT_PATH starts task k from task k−1's adapter under the same log root and seed
(``logs/<type>/task_<k-1>_seed<S>/checkpoints/global_step_<G>/actor``). vlacrl keeps every finished stage in
the sequence state (``sequence_state_seed<S>.json``), so an invocation in the same log root continues by itself;
this module covers the state that does not know task k−1 (another log tool, a deleted state file): with
``crl.first_task`` set (the launchers and the paper configs set it), the finished stage dirs of tasks
first..k−1 under the log root are taken into the history, newest last, the way the runner recorded them
(``stage_record.json`` in each stage dir, written after every stage), else as their latest complete checkpoint's
adapter. Task k−1 must be there; otherwise the run stops with one error saying what to do.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from vlacrl.config.validate import ConfigError
from vlacrl.crl.base import StageRecord
from vlacrl.runners.checkpoint import latest_checkpoint, write_text_atomic

STAGE_RECORD_FILE = "stage_record.json"


def write_stage_record(record: StageRecord) -> None:
    """``<run_dir>/stage_record.json``: the finished stage as the runner recorded it (written atomically)."""
    run_dir = Path(record.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / STAGE_RECORD_FILE, json.dumps(asdict(record), indent=2))


def read_stage_record(run_dir: Path, task: int) -> StageRecord | None:
    """The finished stage of ``task`` in ``run_dir``: its ``stage_record.json``, else its latest complete
    checkpoint's adapter (no method outputs), else None."""
    path = run_dir / STAGE_RECORD_FILE
    if path.is_file():
        return StageRecord(**json.loads(path.read_text()))
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None or not (checkpoint / "actor").is_dir():
        return None
    return StageRecord(0, [task], str(run_dir), str(checkpoint / "actor"), {})


def earlier_stages(
    first_task: int | None, first_stage: list[int], stage_dir: Callable[[list[int]], Path], explicit_start: bool
) -> list[StageRecord]:
    """The finished stages this sequence continues after (see the module docstring), re-indexed 0..n−1.

    Args:
        first_task: the suite's first task (``crl.first_task``); None: no continuation.
        first_stage: the tasks of this invocation's first stage (one task for a continuation).
        stage_dir: the run dir of a stage's tasks under the log root.
        explicit_start: ``actor.model.lora_path`` is given (the launchers' CHECKPOINT_PATH): start there.
    """
    if first_task is None or explicit_start or len(first_stage) != 1 or first_stage[0] <= first_task:
        return []
    task = first_stage[0]
    found: list[StageRecord] = []
    for earlier in range(task - 1, first_task - 1, -1):
        record = read_stage_record(stage_dir([earlier]), earlier)
        if record is None:
            break
        found.append(record)
    if not found:
        raise ConfigError(
            f"crl.tasks starts at task {task}, after the suite's first task {first_task}, so it continues from task "
            f"{task - 1}'s adapter, but {stage_dir([task - 1])} holds no finished stage: train task {task - 1} first "
            f"(or a range that starts at {first_task}), or name the adapter to start from with actor.model.lora_path "
            f"(the launchers' CHECKPOINT_PATH)"
        )
    return [StageRecord(i, r.task_ids, r.run_dir, r.adapter_dir, dict(r.extra)) for i, r in enumerate(reversed(found))]
