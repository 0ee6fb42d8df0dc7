"""The interface every continual-learning method implements.

A method lives in two places, built from the same resolved config:

* on the **driver**, the continual runner asks it how to run the task sequence
  (:meth:`CRLMethod.task_schedule`) and which config overrides each stage's training run and each
  evaluation need (:meth:`CRLMethod.train_overrides`, :meth:`CRLMethod.eval_overrides`) — this is how
  Seq. FT chains adapters, weight merge folds earlier adapters, EWC finds the previous Fisher;
* in every **actor rank**, the actor worker calls the training hooks: :meth:`setup_actor` after the model
  is built (before sharding), :meth:`param_groups` for the optimizer, :meth:`observe_rollout` once per
  global step, :meth:`extra_losses` per micro-batch (with the :attr:`batch_keys` of the micro-batch),
  :meth:`replay_batch` per micro-batch, :meth:`after_backward` after each micro-batch backward,
  :meth:`stop_update` after each optimizer step, :meth:`finish_task` once after the last global step;
* in every **rollout worker**, :meth:`setup_rollout` once the model is built.

Defaults do nothing, so a method overrides only what it changes. Methods keep their state in plain
attributes; :meth:`state_dict`/:meth:`load_state_dict` make it resumable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from vlacrl.models.families import family_of


@dataclass
class StageRecord:
    """What the continual runner knows about a finished stage (one task, or several for multitask)."""

    index: int  # position in the sequence, 0-based
    task_ids: list[int]
    run_dir: str  # log dir of the stage's training run
    adapter_dir: str | None  # <run_dir>/checkpoints/global_step_<G>/actor
    extra: dict[str, Any] = field(default_factory=dict)  # method outputs (e.g. the Fisher file)


def is_full_finetuning(cfg: Mapping[str, Any]) -> bool:
    """Every weight of the policy trains (``actor.model.is_lora=False``, or a family without LoRA): a stage saves
    the whole model, and only methods with :attr:`CRLMethod.supports_full_finetuning` can run."""
    return family_of(cfg).trains_all_weights(cfg)


def start_from(cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
    """Overrides that start a training run from a stage's saved ``actor/`` dir, as the policy family chains it
    (:meth:`vlacrl.models.families.PolicyFamily.start_from`: OpenVLA-OFT's adapter, a full model directory, the
    Simple CNN's ``model.pt``)."""
    return family_of(cfg).start_from(cfg, actor_dir)


def evaluate_from(cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
    """Overrides that evaluate a stage's saved ``actor/`` dir
    (:meth:`~vlacrl.models.families.PolicyFamily.eval_from`)."""
    return family_of(cfg).eval_from(cfg, actor_dir)


class CRLMethod:
    """Base class: sequential fine-tuning semantics with no extra terms (subclasses refine)."""

    name = "base"
    #: micro-batch keys (actor layout, e.g. added by :meth:`observe_rollout`) the actor copies into the
    #: ``outputs`` given to :meth:`extra_losses`
    batch_keys: tuple[str, ...] = ()
    #: whether the method works with every weight trainable (``actor.model.is_lora=False``): no LoRA-only state
    supports_full_finetuning = False

    def __init__(self, cfg: Mapping[str, Any]):
        """``cfg`` is the resolved run config; the method's own keys are under ``cfg["crl"]``."""
        self.cfg = cfg
        self.params: dict[str, Any] = dict((cfg.get("crl") or {}))

    # ---------------------------------------------------------------- driver side (continual runner)
    def task_schedule(self, task_ids: list[int]) -> list[list[int]]:
        """The training stages: by default one stage per task, in the given order."""
        return [[t] for t in task_ids]

    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Config overrides (dotted keys) for stage ``stage_index`` given the finished stages."""
        return {}

    def eval_overrides(self, stage: StageRecord, history: list[StageRecord]) -> dict[str, Any]:
        """Config overrides to evaluate the model after ``stage`` (default: its adapter).

        With ``crl.eval_lora_scale = s`` the adapter is evaluated at scale s (``actor.model.lora_scale``,
        docs/methods/lora_scale.md: s = 0 is the base model, s = 1 the adapter as trained).
        """
        overrides: dict[str, Any] = evaluate_from(self.cfg, stage.adapter_dir) if stage.adapter_dir else {}
        scale = self.params.get("eval_lora_scale")
        if scale is not None:
            if not 0.0 <= float(scale) <= 1.0:
                raise ValueError(f"crl.eval_lora_scale must be in [0, 1], got {scale}")
            overrides["actor.model.lora_scale"] = float(scale)
        return overrides

    def check_inputs(self) -> None:
        """Open the files this method reads when the actor starts (replay data, demos) as cheaply as possible;
        raise ``ValueError`` or ``OSError`` with one line that names the key. Called by config validation before
        Ray starts (``vlacrl.config.validate.check_method_inputs``). Default: nothing to check."""

    # ---------------------------------------------------------------- actor side (every actor rank)
    def setup_actor(self, model: torch.nn.Module) -> None:
        """Called once the model (with its adapter) is built, before FSDP sharding."""

    def setup_rollout(self, model: torch.nn.Module) -> None:
        """Called in every rollout worker once its model is built (so extra trainable modules exist there too)."""

    def observe_rollout(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The global step's batch in the actor layout (after masks and advantages): extra per-sample keys to
        add to it (shuffled and split with it); also where a method records rollouts (D_RL, B_old pools)."""
        return {}

    def rollout_values(self, inputs: Mapping[str, torch.Tensor], action_tokens: torch.Tensor) -> torch.Tensor | None:
        """Values [B, 1] the rollout records for PPO's GAE (instead of the policy's value head), from the model's
        last forward on ``inputs``; None keeps the value head's."""
        return None

    def policy_values(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Values [B, 1] of the micro-batch's RL rows for the PPO loss (instead of the value head's), or None."""
        return None

    def stop_update(self) -> bool:
        """True to skip the rest of this global step's mini-batches (an early stop, e.g. at a KL target)."""
        return False

    def param_groups(self, model: torch.nn.Module, optim_cfg: Mapping[str, Any]) -> list[dict] | None:
        """Optimizer parameter groups, or None for the default (``lr`` for all, ``value_lr`` for the head)."""
        return None

    def replay_batch(self) -> dict[str, torch.Tensor] | None:
        """A batch to concatenate to the next RL micro-batch (ER/DER), or None."""
        return None

    def extra_losses(
        self, model: torch.nn.Module, outputs: Mapping[str, torch.Tensor], replay: Mapping[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """Named scalar loss terms added to the RL loss of a micro-batch; logged as ``train/<name>/loss``.

        ``outputs`` are the policy outputs of the micro-batch's RL half; ``replay`` holds the replay half's
        outputs and targets when :meth:`replay_batch` supplied one.
        """
        return {}

    def pop_metrics(self) -> dict[str, float]:
        """Extra metrics of the last micro-batch (logged under ``train/``), cleared on read."""
        return {}

    def after_backward(self, model: torch.nn.Module, is_last_step: bool) -> None:
        """Called after every micro-batch backward (EWC accumulates its Fisher here on the last step)."""

    def after_optimizer_step(self, model: torch.nn.Module, is_last_step: bool) -> None:
        """Called after every optimizer step."""

    def finish_task(self, model: torch.nn.Module, out_dir: Path, is_rank0: bool) -> dict[str, Any]:
        """Called on every rank after the stage's last step; returns what the runner records (rank 0)."""
        return {}

    # ---------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass
