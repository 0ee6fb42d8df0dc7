"""Task lists of a continual sequence (``crl.tasks``, ``crl.eval_tasks``) as the launchers write them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vlacrl.config.errors import ConfigError


def parse_task_range(value: Any) -> list[int]:
    """Task ids from ``5``, ``"5"``, ``"0,9"`` / ``"[0, 9]"`` (the range 0..9, as the launchers), or a list."""
    if isinstance(value, int):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _distinct([int(v) for v in value], value)
    text = re.sub(r"[\[\]() ]", "", str(value))
    parts = [p for p in text.split(",") if p]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"crl.tasks: cannot parse {value!r}; use k, 'a,b' (the range a..b) or a list") from None
    if len(numbers) == 1:
        return numbers
    if len(numbers) != 2 or numbers[0] >= numbers[1]:
        raise ConfigError(f"crl.tasks: {value!r} must be one id k or a range 'a,b' with a < b (or a list)")
    return list(range(numbers[0], numbers[1] + 1))


def _distinct(ids: list[int], value: Any) -> list[int]:
    """``ids`` when non-empty and without repeats (each task is one stage and one matrix column)."""
    if not ids:
        raise ConfigError(f"crl.tasks: {list(value)!r} names no task; give at least one task id")
    repeated = sorted({t for t in ids if ids.count(t) > 1})
    if repeated:
        raise ConfigError(
            f"crl.tasks: task(s) {repeated} appear more than once in {list(value)!r}; list each task once"
        )
    return ids
