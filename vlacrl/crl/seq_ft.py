"""Sequential fine-tuning (Seq. FT, docs/methods/seq_ft.md) and its reordered-sequence variant.

Stage 0 trains a fresh LoRA adapter on the base model (or the adapter ``actor.model.lora_path`` already
names); every later stage loads the previous stage's adapter as *trainable* and keeps training it. Each
stage is its own training run, so AdamW is re-created (the reference's ``optim.pt`` is never reloaded).
No regulariser, no replay; the base weights never change.

``crl.order`` (a list of task ids, a permutation of the sequence's tasks) trains the tasks in that order;
``seq_ft_reorder`` is the same method under the reference's launcher name
(``run_embodiment_sequential_reorder.sh``).
"""

from __future__ import annotations

from typing import Any

from vlacrl.crl.base import CRLMethod, StageRecord, start_from
from vlacrl.crl.common import previous_adapter, task_order
from vlacrl.crl.registry import register


@register("seq_ft")
class SeqFT(CRLMethod):
    """Keep training one adapter across the task sequence (fresh optimizer per stage)."""

    supports_full_finetuning = True  # every weight trains when actor.model.is_lora=False

    def task_schedule(self, task_ids: list[int]) -> list[list[int]]:
        """One stage per task, in ``crl.order`` when given (validated as a permutation), else as given."""
        return [[t] for t in task_order(self.params.get("order"), task_ids)]

    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Stage k > 0: ``{"actor.model.lora_path": <stage k-1 adapter dir>}`` (loaded trainable); under full
        fine-tuning stage k-1's whole model (:func:`~vlacrl.crl.common.start_from`)."""
        if stage_index == 0:
            return {}
        return start_from(self.cfg, previous_adapter(stage_index, history))


@register("seq_ft_reorder")
class SeqFTReorder(SeqFT):
    """Seq. FT over a user-given task order (``crl.order``, or the order of ``crl.tasks`` when it is a list)."""
