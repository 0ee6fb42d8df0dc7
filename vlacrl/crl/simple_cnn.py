"""Sequential RL of the Simple CNN baseline (docs/methods/simple_cnn.md).

Like Seq. FT, one model keeps training task after task with a fresh optimizer, but the CNN has no adapter:
stage k > 0 starts from stage k-1's full ``model.pt`` (``actor.checkpoint_load_path``, as the reference's
launcher chains it), and every evaluation loads the stage's ``model.pt`` through ``rollout.checkpoint_path``
(the reference's CNN evaluation key). Stage 0 starts from the configured checkpoint (the supervised
``best_checkpoint.pt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlacrl.crl.base import CRLMethod, StageRecord
from vlacrl.crl.common import previous_adapter, task_order
from vlacrl.crl.registry import register
from vlacrl.models.simple_cnn_rl import RL_CHECKPOINT


@register("simple_cnn")
class SimpleCNNSequence(CRLMethod):
    """Chain the CNN's ``model.pt`` across the task sequence."""

    def task_schedule(self, task_ids: list[int]) -> list[list[int]]:
        return [[t] for t in task_order(self.params.get("order"), task_ids)]

    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Stage k > 0: ``actor.checkpoint_load_path`` = stage k-1's ``.../actor/model.pt`` (which must exist:
        no random checkpoint is ever created in its place)."""
        if stage_index == 0:
            return {}
        previous = Path(previous_adapter(stage_index, history)) / RL_CHECKPOINT
        return {"actor.checkpoint_load_path": str(previous), "actor.create_tiny_checkpoint": False}

    def eval_overrides(self, stage: StageRecord, history: list[StageRecord]) -> dict[str, Any]:
        """Evaluate the stage's ``model.pt`` (``rollout.checkpoint_path``)."""
        if not stage.adapter_dir:
            return {}
        return {"rollout.checkpoint_path": str(Path(stage.adapter_dir) / RL_CHECKPOINT)}
