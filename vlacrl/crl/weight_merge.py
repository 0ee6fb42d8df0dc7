"""Weight merge ("RETAIN" in the paper; docs/methods/weight_merge.md): fold earlier adapters in, train a new one.

Stage k > 0 builds the model as ``W ← W0 + c · Σ_{j<k} ΔW_j`` (every earlier stage's adapter, in order,
merged with coefficient c = ``crl.merge_coefficient``; ``vlacrl.models.lora.setup_lora``) and then trains a
**fresh** adapter on top at scale 1; only that adapter is saved. Evaluation after stage k loads the
current adapter at ``lora_scale = c`` on the same merged base, i.e. the evaluated model is
``W0 + c · Σ_{j≤k} ΔW_j`` — the first stage included (the reference's launcher always adds the scale).
"""

from __future__ import annotations

from typing import Any

from vlacrl.crl.base import CRLMethod, StageRecord
from vlacrl.crl.common import MethodConfigError, unit_interval
from vlacrl.crl.registry import register

DEFAULT_MERGE_COEFFICIENT = 0.5


@register("weight_merge")
class WeightMerge(CRLMethod):
    """Merge every earlier adapter with coefficient c; a new adapter per stage; evaluate at scale c."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.coefficient = unit_interval(
            self.params.get("merge_coefficient", DEFAULT_MERGE_COEFFICIENT), "crl.merge_coefficient"
        )

    @staticmethod
    def _adapters(records: list[StageRecord]) -> list[str]:
        missing = [r.index for r in records if not r.adapter_dir]
        if missing:
            raise MethodConfigError(f"weight_merge: stage(s) {missing} left no adapter to merge")
        return [str(r.adapter_dir) for r in records]

    def _merge_overrides(self, earlier: list[StageRecord]) -> dict[str, Any]:
        overrides: dict[str, Any] = {"actor.model.previous_lora_merge_coefficient": self.coefficient}
        if earlier:
            overrides["actor.model.lora_paths"] = self._adapters(earlier)
        return overrides

    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Stage 0: only the coefficient (no effect without ``lora_paths``, as the reference passes it).

        Stage k > 0: ``actor.model.lora_paths`` = the adapters of stages 0..k-1,
        ``actor.model.previous_lora_merge_coefficient`` = c, and ``actor.model.lora_path`` = None, so a fresh
        adapter is created even when the base config names an initial adapter.
        """
        if stage_index == 0:
            return self._merge_overrides([])
        if len(history) < stage_index:
            raise MethodConfigError(f"stage {stage_index} needs {stage_index} finished stage(s), got {len(history)}")
        return {**self._merge_overrides(list(history[:stage_index])), "actor.model.lora_path": None}

    def eval_overrides(self, stage: StageRecord, history: list[StageRecord]) -> dict[str, Any]:
        """The current adapter at ``actor.model.lora_scale = c`` on the base with the earlier adapters merged.

        ``crl.eval_lora_scale`` (in [0, 1]), when set, replaces c as the current adapter's scale (the
        reference's ``eval_embodiment_lora_scale.sh`` "current scale"); the merge coefficient stays c.
        """
        if not stage.adapter_dir:
            raise MethodConfigError(f"weight_merge: stage {stage.index} left no adapter to evaluate")
        earlier = [r for r in history if r.index < stage.index]
        return {
            **self._merge_overrides(earlier),
            "actor.model.lora_path": str(stage.adapter_dir),
            "actor.model.lora_scale": self._eval_scale(),
        }

    def _eval_scale(self) -> float:
        scale = self.params.get("eval_lora_scale")
        return self.coefficient if scale is None else unit_interval(scale, "crl.eval_lora_scale")
