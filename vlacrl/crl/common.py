"""Small helpers shared by the method plugins: reading ``crl.*`` / ``actor.*`` values, chaining adapters."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from vlacrl.crl.base import StageRecord


class MethodConfigError(ValueError):
    """A method's ``crl.*`` hyper-parameter is missing or out of range."""


def nested_get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``; ``default`` when a level is missing or the value is None."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            return default
        node = node[part]
    return node


def unit_interval(value: Any, key: str) -> float:
    """``float(value)``, raising :class:`MethodConfigError` unless it lies in [0, 1]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MethodConfigError(f"{key} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise MethodConfigError(f"{key} must be in [0, 1], got {number}")
    return number


def previous_adapter(stage_index: int, history: Sequence[StageRecord]) -> str:
    """The adapter directory of the stage before ``stage_index`` (the one to keep training)."""
    if stage_index <= 0:
        raise MethodConfigError("the first stage has no previous adapter")
    if len(history) < stage_index:
        raise MethodConfigError(f"stage {stage_index} needs {stage_index} finished stage(s), got {len(history)}")
    record = history[stage_index - 1]
    if not record.adapter_dir:
        raise MethodConfigError(f"stage {record.index} (tasks {record.task_ids}) left no adapter checkpoint to chain")
    return str(record.adapter_dir)


def earlier_task_ids(stage_index: int, history: Sequence[StageRecord]) -> list[int]:
    """The task ids trained by the stages before ``stage_index``, sorted, each once (``crl.seen_task_ids``)."""
    return sorted({int(t) for record in history[:stage_index] for t in record.task_ids})


def demo_task_files(cfg: Mapping[str, Any], task_ids: Sequence[int] | None = None) -> list:
    """The ``.hdf5`` demo files of ``crl.dataset_dir`` (default: :func:`vlacrl.data.default_replay_dir` of the
    train suite): all of them, or with ``task_ids`` those of these tasks (``ReplayDataError`` when one has none)."""
    from vlacrl.data import default_replay_dir, replay_files, select_task_files
    from vlacrl.envs.registry import simulator_for

    env = cfg["env"]["train"]
    suite = str(env["task_suite_name"])
    files = replay_files(nested_get(cfg, "crl.dataset_dir") or default_replay_dir(suite))
    if task_ids is None:
        return files
    simulator = simulator_for(env)
    return select_task_files(files, [simulator.task_language(suite, int(t)) for t in task_ids])


def task_order(order: Any, task_ids: Sequence[int]) -> list[int]:
    """``order`` (a list of task ids) validated as a permutation of ``task_ids``; ``task_ids`` when None."""
    if order is None:
        return [int(t) for t in task_ids]
    if isinstance(order, (str, bytes)) or not isinstance(order, Sequence):
        raise MethodConfigError(f"crl.order must be a list of task ids, got {order!r}")
    ordered = [int(t) for t in order]
    if len(set(ordered)) != len(ordered):
        raise MethodConfigError(f"crl.order repeats a task: {ordered}")
    if task_ids and sorted(ordered) != sorted(int(t) for t in task_ids):
        raise MethodConfigError(f"crl.order {ordered} must be a permutation of the sequence's tasks {list(task_ids)}")
    return ordered
