"""Multitask oracle (docs/methods/multitask.md): one training stage on all tasks of the sequence.

The stage's ``env.fixed_task_ids`` lists every task (sorted, as ``run_embodiment_multitask.sh``); the env
layer then pools the reset states of all listed tasks (50 per LIBERO task, seed-0 permutation, ordered
sweep), so tasks are sampled in proportion to their init-state counts and each GRPO group shares one task
and one initial state. One run of ``runner.max_epochs`` global steps; a fresh adapter (or
``actor.model.lora_path`` when given).
"""

from __future__ import annotations

from vlacrl.crl.base import CRLMethod
from vlacrl.crl.common import MethodConfigError
from vlacrl.crl.registry import register


@register("multitask")
class Multitask(CRLMethod):
    """All tasks in a single stage."""

    supports_full_finetuning = True  # every weight trains when actor.model.is_lora=False

    def task_schedule(self, task_ids: list[int]) -> list[list[int]]:
        """``[sorted(task_ids)]``; the ids must be distinct and non-empty."""
        tasks = sorted(int(t) for t in task_ids)
        if not tasks:
            raise MethodConfigError("multitask needs at least one task id")
        if len(set(tasks)) != len(tasks):
            raise MethodConfigError(f"multitask task ids repeat: {tasks}")
        return [tasks]
