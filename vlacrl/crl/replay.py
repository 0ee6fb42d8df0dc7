"""Experience Replay (``er``) and Dark Experience Replay (``der``) — docs/methods/er.md.

Both chain tasks like Seq. FT (the previous stage's adapter keeps training) and concatenate one replay
micro-batch of demonstration samples to every RL micro-batch:

* ``er``: ``bc_coeff · CE`` of the expert action tokens under the replay half's raw logits (action ids only);
* ``der``: ``bc_coeff · MSE`` between the replay half's action-id logits and reference logits — cached
  base-model logits (``crl.use_cached_logits: true``, the reference) or the same model with its adapter
  disabled, computed under ``no_grad`` (``false``; broken in the reference, working here).

``crl.replay_tasks``: ``all`` (the reference: one demo of every task file of the suite, future tasks
included) or ``seen`` (only tasks of earlier stages; the first stage has no replay). See docs/methods/er.md.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch

from vlacrl.algorithms.replay_losses import der_loss, er_loss
from vlacrl.crl.base import CRLMethod, StageRecord, start_from
from vlacrl.crl.common import (
    MethodConfigError,
    demo_task_files,
    earlier_task_ids,
    nested_get,
    previous_adapter,
    task_order,
)
from vlacrl.crl.registry import register
from vlacrl.models.families import ActionVocabulary, family_of
from vlacrl.models.inputs import PROMPT_INPUT_KEYS
from vlacrl.models.lora import base_module

logger = logging.getLogger(__name__)

REPLAY_TASK_MODES = ("all", "seen")
INPUT_KEYS = PROMPT_INPUT_KEYS


class ReplayConfigError(ValueError):
    """A ``crl.*`` key of ER/DER is invalid."""


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


@register("er")
class ExperienceReplay(CRLMethod):
    """ER: behaviour cloning on replayed demonstrations (keys under ``crl``, see configs/crl/er.yaml)."""

    uses_cached_logits = False

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.bc_coeff = float(self.params.get("bc_coeff", 0.03))
        self.replay_tasks = str(self.params.get("replay_tasks", "all"))
        if self.replay_tasks not in REPLAY_TASK_MODES:
            raise ReplayConfigError(f"crl.replay_tasks must be one of {REPLAY_TASK_MODES}, got {self.replay_tasks!r}")
        if self.bc_coeff < 0:
            raise ReplayConfigError(f"crl.bc_coeff must be >= 0, got {self.bc_coeff}")
        demos = self.params.get("demos_per_task", 1)
        self.demos_per_task = None if demos is None else int(demos)
        self._iterator = None
        self.vocabulary: ActionVocabulary | None = None  # the policy family's action tokens (setup_actor)
        self._metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ driver side
    def task_schedule(self, task_ids: list[int]) -> list[list[int]]:
        """One stage per task, in ``crl.order`` when given (as Seq. FT)."""
        return [[t] for t in task_order(self.params.get("order"), task_ids)]

    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Seq. FT chaining (stage k > 0 keeps training stage k − 1's adapter) + the earlier stages' task ids."""
        overrides: dict[str, Any] = {"crl.seen_task_ids": earlier_task_ids(stage_index, history)}
        if stage_index > 0:
            overrides.update(start_from(self.cfg, previous_adapter(stage_index, history)))
        return overrides

    # ------------------------------------------------------------------ actor side
    def task_files(self) -> list:
        """The replay files: all of the directory, or those of the earlier stages' tasks (``seen``)."""
        seen = self.params.get("seen_task_ids") or []
        return demo_task_files(self.cfg, None if self.replay_tasks == "all" else seen)

    def check_inputs(self) -> None:
        """The replay files index as the actor will read them (file metadata only): demos present, logits when
        cached."""
        from vlacrl.data import ReplayDataset

        try:
            files = self.task_files()
            if not files:
                return
            chunks = int(nested_get(self.cfg, "actor.model.num_action_chunks", 8))
            dataset = ReplayDataset(files, demos_per_task=self.demos_per_task, num_action_chunks=chunks,
                                    with_logits=self.uses_cached_logits)  # fmt: skip
        except (ValueError, OSError) as exc:
            raise MethodConfigError(f"crl.dataset_dir: {' '.join(str(exc).split())}") from None
        batch = int(self.params.get("replay_batch_size") or nested_get(self.cfg, "actor.micro_batch_size", 1))
        if len(dataset) < batch:  # each actor rank needs at least one full replay micro-batch (CyclingBatchSampler)
            raise MethodConfigError(
                f"crl.dataset_dir: the replay files hold {len(dataset)} samples, fewer than one replay micro-batch "
                f"of {batch} (crl.replay_batch_size); replay more demos per task (crl.demos_per_task) or lower "
                "crl.replay_batch_size"
            )

    def setup_actor(self, model: torch.nn.Module) -> None:
        """Build this rank's replay dataset and its endless micro-batch iterator (before FSDP sharding)."""
        from vlacrl.data import ReplayBatchIterator, ReplayCollator, ReplayDataset
        from vlacrl.models.openvla_oft import OpenVLAOFTProcessor

        policy = base_module(model)
        self.vocabulary = family_of(self.cfg).action_vocabulary(model)
        files = self.task_files()
        if not files:
            logger.info("%s: no earlier tasks to replay in this stage", self.name)
            self._iterator = None
            return
        rank, world = _rank_and_world()
        dataset = ReplayDataset(
            files, demos_per_task=self.demos_per_task, num_action_chunks=int(policy.num_action_chunks),
            rank=rank, world_size=world, with_logits=self.uses_cached_logits,
        )  # fmt: skip
        processor = OpenVLAOFTProcessor.from_model_dir(
            self.cfg["actor"]["checkpoint_load_path"], max_length=int(self.cfg["runner"]["max_prompt_length"])
        )
        batch_size = self.params.get("replay_batch_size") or self.cfg["actor"]["micro_batch_size"]
        self._iterator = ReplayBatchIterator(
            dataset, ReplayCollator(processor, policy.action_tokenizer), int(batch_size),
            seed=int(self.params.get("replay_seed") or 0), reshuffle=bool(self.params.get("replay_reshuffle", False)),
            num_workers=int(self.params.get("replay_num_workers") or 0),
        )  # fmt: skip
        logger.info(
            "%s: replaying %d files, %d samples on rank %d/%d", self.name, len(files), len(dataset), rank, world
        )

    def replay_batch(self) -> dict[str, torch.Tensor] | None:
        """The next replay micro-batch on CPU (see :class:`vlacrl.data.ReplayCollator`), or None."""
        return next(self._iterator) if self._iterator is not None else None

    def extra_losses(
        self, model: torch.nn.Module, outputs: Mapping[str, torch.Tensor], replay: Mapping[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """``{"bc": bc_coeff · CE}`` from ``replay["raw_logits"]`` [B, 56, V] and ``replay["action_tokens"]``."""
        if replay is None:
            return {}
        begin, vocab = self.vocabulary.token_begin, self.vocabulary.token_end
        loss, self._metrics = er_loss(
            replay["raw_logits"], replay["action_tokens"], self.bc_coeff, token_begin=begin, vocab_size=vocab
        )
        return {"bc": loss}

    def pop_metrics(self) -> dict[str, float]:
        """The last micro-batch's extra metrics (``bc/...``), cleared on read; for the actor to log."""
        metrics, self._metrics = self._metrics, {}
        return metrics


@register("der")
class DarkExperienceReplay(ExperienceReplay):
    """DER: logit matching on replayed demonstrations (see configs/crl/der.yaml)."""

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.uses_cached_logits = bool(self.params.get("use_cached_logits", True))
        logits_type = str(self.params.get("logits_type", "processed"))
        if logits_type != "processed":
            raise ReplayConfigError(
                f"crl.logits_type {logits_type!r} is not supported: the cache stores processed (action-id) logits only"
            )

    def reference_logits(self, model: torch.nn.Module, replay: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """[B, 56, 256] action-id logits of ``model`` with its LoRA adapter disabled, under ``no_grad``."""
        if not hasattr(model, "disable_adapter"):
            raise ReplayConfigError(
                "der with crl.use_cached_logits=false needs a LoRA (peft) model: set actor.model.is_lora=true"
            )
        device = replay["processed_logits"].device
        inputs = [replay[key].to(device) for key in (*INPUT_KEYS, "action_tokens")]
        begin, vocab = self.vocabulary.token_begin, self.vocabulary.token_end
        with torch.no_grad(), model.disable_adapter():
            logits = base_module(model)(*inputs).logits  # a causal family teacher-forces the expert tokens
        return logits[..., begin:vocab]

    def extra_losses(
        self, model: torch.nn.Module, outputs: Mapping[str, torch.Tensor], replay: Mapping[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """``{"bc": bc_coeff · MSE(replay["processed_logits"], reference)}``; the reference is
        ``replay["reference_logits"]`` (cached) or :meth:`reference_logits`."""
        if replay is None:
            return {}
        current = replay["processed_logits"]
        if self.uses_cached_logits:
            reference = replay["reference_logits"]
        else:
            reference = self.reference_logits(model, replay)
        loss, self._metrics = der_loss(current, reference, self.bc_coeff)
        return {"bc": loss}
