"""iRe-VLA (``crl.method=ire_vla``): per new task, RL on the action output only, then supervised consolidation.

* Stage 1 — RL (the ordinary training run of the stage, ``crl.stage1_steps`` global steps when set):
  :meth:`IReVLA.setup_actor` freezes every parameter except the stage-1 selection (default: ``lm_head`` LoRA +
  value head, :mod:`.params`); :meth:`IReVLA.observe_rollout` appends every successful episode of each rollout
  batch to D_RL (:class:`.buffer.SuccessBuffer`).
* Stage 2 — supervised consolidation (``crl.stage2_steps`` optimizer steps) on expert demos ∪ D_RL, mixed
  ``crl.demo_fraction`` : rest per batch, training the backbone LoRA and the head: :meth:`IReVLA.consolidate`
  (its own AdamW; one :func:`.stage2.stage2_step` per step). With ``crl.stage2_in_finish_task`` (default) it
  runs inside :meth:`IReVLA.finish_task` on the actor's (sharded) model, which then writes the consolidated
  adapter to ``<out_dir>/ire_vla/stage2_adapter`` and records it (``extra["stage2_adapter_dir"]``): the
  evaluation and the next stage use it.
* ``finish_task`` also writes this rank's D_RL to ``<out_dir>/ire_vla/d_rl_rank<r>.pt``; the next stage loads
  every rank file (``crl.previous_d_rl_dir``), so D_RL grows over the task sequence.

Tasks chain like Seq. FT. See docs/methods/ire_vla.md.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from vlacrl.crl.base import StageRecord
from vlacrl.crl.common import (
    MethodConfigError,
    demo_task_files,
    earlier_task_ids,
    nested_get,
    previous_adapter,
    unit_interval,
)
from vlacrl.crl.crl_vla import samples as S
from vlacrl.crl.ire_vla.buffer import SuccessBuffer, success_from_rewards
from vlacrl.crl.ire_vla.params import DEFAULT_STAGE1_PATTERNS, select, set_trainable, trainable_names
from vlacrl.crl.ire_vla.stage2 import mixed_batch, split_counts, stage2_step
from vlacrl.crl.registry import register
from vlacrl.crl.seq_ft import SeqFT
from vlacrl.models.lora import base_module

logger = logging.getLogger(__name__)

STATE_SUBDIR = "ire_vla"
D_RL_STEM = "d_rl"
D_RL_KEY = "d_rl_dir"
STAGE2_ADAPTER_KEY = "stage2_adapter_dir"
DEFAULT_STAGE2_STEPS = 200
DEFAULT_D_RL_MAX_SAMPLES = 4096
DEMO_TASK_MODES = ("all", "trained")  # crl.demo_tasks


@register("ire_vla")
class IReVLA(SeqFT):
    """iRe-VLA; see the module docstring and configs/crl/ire_vla.yaml."""

    supports_full_finetuning = False  # its two stages switch which LoRA/head tensors train

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        p = self.params
        self.stage1_patterns = list(p.get("stage1_trainable") or DEFAULT_STAGE1_PATTERNS)
        stage2 = p.get("stage2_trainable")
        self.stage2_patterns = None if stage2 is None else list(stage2)
        self.stage1_steps = None if p.get("stage1_steps") is None else int(p["stage1_steps"])
        self.stage2_steps = int(p.get("stage2_steps", DEFAULT_STAGE2_STEPS))
        self.stage2_batch = int(p.get("stage2_batch_size") or nested_get(cfg, "actor.micro_batch_size", 1))
        self.stage2_lr = float(p.get("stage2_lr") or nested_get(cfg, "actor.optim.lr", 2.0e-5))
        sampling = nested_get(cfg, "algorithm.sampling_params.temperature_train", 1.0)
        self.stage2_temperature = float(p.get("stage2_temperature") or sampling)
        if self.stage2_temperature <= 0:
            raise MethodConfigError(f"crl.stage2_temperature must be > 0, got {self.stage2_temperature}")
        self.demo_fraction = unit_interval(p.get("demo_fraction", 0.5), "crl.demo_fraction")
        self.stage2_in_finish_task = bool(p.get("stage2_in_finish_task", True))
        self.demo_tasks = str(p.get("demo_tasks", "all"))
        if self.demo_tasks not in DEMO_TASK_MODES:
            raise MethodConfigError(f"crl.demo_tasks must be one of {DEMO_TASK_MODES}, got {self.demo_tasks!r}")
        limit = p.get("d_rl_max_samples", DEFAULT_D_RL_MAX_SAMPLES)
        self.seed = int(p["sample_seed"] if p.get("sample_seed") is not None else nested_get(cfg, "actor.seed", 0))
        if self.stage2_steps < 0 or self.stage2_batch < 1 or (self.stage1_steps is not None and self.stage1_steps < 1):
            raise MethodConfigError("crl.stage2_steps must be >= 0, stage2_batch_size and stage1_steps >= 1")
        self.d_rl = SuccessBuffer(None if limit is None else int(limit), self.seed)
        self.universe: list[str] = []  # parameters trainable when the model was built
        self.stage1_names: list[str] = []
        self.rank = 0
        self._metrics: dict[str, float] = {}

    # ------------------------------------------------------------------------------------- driver side
    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """``runner.max_epochs`` = Stage-1 length (when set); stage k > 0 continues from stage k − 1's
        consolidated adapter (else its RL adapter) and loads its D_RL (``crl.previous_d_rl_dir``)."""
        overrides: dict[str, Any] = {"crl.seen_task_ids": earlier_task_ids(stage_index, history)}
        if self.stage1_steps is not None:
            overrides["runner.max_epochs"] = self.stage1_steps
        if stage_index > 0:
            record = history[stage_index - 1]
            adapter = record.extra.get(STAGE2_ADAPTER_KEY) or previous_adapter(stage_index, history)
            if not record.extra.get(D_RL_KEY):
                raise MethodConfigError(f"ire_vla: stage {record.index} recorded no D_RL (extra[{D_RL_KEY!r}])")
            overrides.update({"actor.model.lora_path": str(adapter), "crl.previous_d_rl_dir": record.extra[D_RL_KEY]})
        return overrides

    def eval_overrides(self, stage: StageRecord, history: list[StageRecord]) -> dict[str, Any]:
        """Evaluate the consolidated adapter when Stage 2 recorded one, else the RL adapter."""
        overrides = super().eval_overrides(stage, history)
        if stage.extra.get(STAGE2_ADAPTER_KEY):
            overrides["actor.model.lora_path"] = str(stage.extra[STAGE2_ADAPTER_KEY])
        return overrides

    def stage_plan(self) -> dict[str, Any]:
        """The two stages of every task, as configured (for the integration and the logs)."""
        return {
            "stage1": {"global_steps": self.stage1_steps or nested_get(self.cfg, "runner.max_epochs"),
                       "trainable": self.stage1_patterns},
            "stage2": {"optimizer_steps": self.stage2_steps, "batch_size": self.stage2_batch, "lr": self.stage2_lr,
                       "demo_fraction": self.demo_fraction, "trainable": self.stage2_patterns or "all"},
        }  # fmt: skip

    # ------------------------------------------------------------------------------------- Stage 1
    def setup_actor(self, model: torch.nn.Module) -> None:
        """Freeze all but the Stage-1 parameters (before FSDP sharding) and load the previous stages' D_RL."""
        self.rank, world = S.rank_and_world()
        self.universe = trainable_names(model)
        self.stage1_names = select(self.universe, self.stage1_patterns)
        if not self.stage1_names:
            raise MethodConfigError(f"ire_vla: crl.stage1_trainable {self.stage1_patterns} matches no trainable "
                                    "parameter")  # fmt: skip
        set_trainable(model, self.universe, self.stage1_names)
        if self.uses_demos:
            self.demo_files()  # fail now, not after the RL stage, when the demo files are missing
        previous = self.params.get("previous_d_rl_dir")
        if previous:
            files = S.rank_files(str(previous), D_RL_STEM)
            if not files:
                raise FileNotFoundError(f"no {D_RL_STEM}_rank*.pt in {previous}")
            merged = SuccessBuffer.merge([SuccessBuffer.load(f) for f in files])
            self.d_rl = merged.shard(self.rank, world)
            self.d_rl.max_samples, self.d_rl.generator = self.d_rl_limit, torch.Generator().manual_seed(self.seed)
        logger.info(
            "iRe-VLA stage 1: %d of %d trainable tensors train (%s); D_RL %d episodes",
            len(self.stage1_names), len(self.universe), self.stage1_patterns, self.d_rl.num_episodes,
        )  # fmt: skip

    @property
    def d_rl_limit(self) -> int | None:
        limit = self.params.get("d_rl_max_samples", DEFAULT_D_RL_MAX_SAMPLES)
        return None if limit is None else int(limit)

    def param_groups(self, model: torch.nn.Module, optim_cfg: Mapping[str, Any]) -> list[dict] | None:
        """Stage-1 groups: the value head at ``value_lr``, the other selected parameters at ``lr``."""
        betas = (float(optim_cfg["adam_beta1"]), float(optim_cfg["adam_beta2"]))
        head, rest = [], []
        for name, param in model.named_parameters():
            if param.requires_grad:
                (head if "value_head" in name else rest).append(param)
        groups = [
            {"params": rest, "lr": float(optim_cfg["lr"]), "betas": betas, "name": "stage1"},
            {"params": head, "lr": float(optim_cfg["value_lr"]), "betas": betas, "name": "value_head"},
        ]
        return [g for g in groups if g["params"]]

    def observe_rollout(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Append the batch's successful episodes (actor layout, after the loss mask) to D_RL; no extra keys."""
        success = success_from_rewards(batch["rewards"], batch.get("valid_mask", batch.get("loss_mask")))
        task_ids = nested_get(self.cfg, "env.fixed_task_ids", [-1])
        task_id = int(task_ids[0] if isinstance(task_ids, (list, tuple)) else task_ids)
        added = self.d_rl.add_episodes(batch, success, task_id)
        self._metrics = {
            "ire_vla/episodes_succeeded": float(added),
            "ire_vla/d_rl_episodes": float(self.d_rl.num_episodes),
            "ire_vla/d_rl_samples": float(len(self.d_rl)),
        }
        return {}

    def pop_metrics(self) -> dict[str, float]:
        metrics, self._metrics = self._metrics, {}
        return metrics

    # ------------------------------------------------------------------------------------- Stage 2
    def prepare_stage2(self, model: torch.nn.Module) -> list[str]:
        """Stage-2 ``requires_grad`` (backbone LoRA + head) on the originally trainable tensors; returns the names."""
        universe = self.universe or trainable_names(model)
        names = select(universe, self.stage2_patterns)
        return set_trainable(model, universe, names)

    def stage2_optimizer(self, model: torch.nn.Module) -> torch.optim.AdamW:
        """AdamW over the trainable parameters at ``crl.stage2_lr`` (betas of ``actor.optim``)."""
        betas = (float(nested_get(self.cfg, "actor.optim.adam_beta1", 0.9)),
                 float(nested_get(self.cfg, "actor.optim.adam_beta2", 0.999)))  # fmt: skip
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW([{"params": params, "lr": self.stage2_lr, "betas": betas}])

    @property
    def uses_demos(self) -> bool:
        """Stage 2 runs here and draws expert demos."""
        return self.stage2_in_finish_task and self.stage2_steps > 0 and self.demo_fraction > 0

    def check_inputs(self) -> None:
        """The expert-demo files exist when Stage 2 will draw from them."""
        if not self.uses_demos:
            return
        try:
            self.demo_files()
        except (ValueError, OSError) as exc:
            raise MethodConfigError(f"crl.dataset_dir: {' '.join(str(exc).split())}") from None

    def demo_files(self) -> list:
        """The expert-demo files: every ``.hdf5`` of ``crl.dataset_dir`` (default: ER's replay directory), or with
        ``crl.demo_tasks: trained`` those of the tasks trained so far (earlier stages' and this stage's)."""
        if self.demo_tasks == "all":
            return demo_task_files(self.cfg)
        earlier = self.params.get("seen_task_ids") or []
        current = nested_get(self.cfg, "env.fixed_task_ids", None) or []
        return demo_task_files(self.cfg, sorted({int(t) for t in [*earlier, *current]}))

    def demo_batches(self, model: torch.nn.Module, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Endless expert-demo batches of ``batch_size`` rows from :meth:`demo_files` (ER's replay format)."""
        from vlacrl.data import ReplayBatchIterator, ReplayCollator, ReplayDataset
        from vlacrl.models.openvla_oft import OpenVLAOFTProcessor

        policy = base_module(model)
        rank, world = S.rank_and_world()
        dataset = ReplayDataset(self.demo_files(), demos_per_task=self.params.get("demos_per_task"),
                                num_action_chunks=int(policy.num_action_chunks), rank=rank, world_size=world,
                                with_logits=False)  # fmt: skip
        processor = OpenVLAOFTProcessor.from_model_dir(
            self.cfg["actor"]["checkpoint_load_path"], max_length=int(self.cfg["runner"]["max_prompt_length"])
        )
        collator = ReplayCollator(processor, policy.action_tokenizer)
        return ReplayBatchIterator(dataset, collator, int(batch_size), seed=self.seed, reshuffle=True)

    def consolidate(
        self,
        model: torch.nn.Module,
        demos: Iterator[Mapping[str, torch.Tensor]] | None = None,
        steps: int | None = None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> list[dict[str, float]]:
        """Stage 2: ``steps`` (default ``crl.stage2_steps``) supervised steps on demos ∪ D_RL; per-step metrics.

        ``demos`` yields expert batches with at least the demo share of rows (:meth:`demo_batches`); None = D_RL
        only. Without ``optimizer`` the model's ``requires_grad`` is switched to the Stage-2 selection
        (:meth:`prepare_stage2`, also on an FSDP2-sharded model) and a fresh AdamW is built. Every rank must run
        the same number of steps (FSDP collectives).
        """
        if optimizer is None:
            self.prepare_stage2(model)
            optimizer = self.stage2_optimizer(model)
        n_demo, n_rl = split_counts(self.stage2_batch, self.demo_fraction, demos is not None, len(self.d_rl) > 0)
        if n_demo + n_rl == 0:
            raise RuntimeError("ire_vla: Stage 2 has neither demos nor successful episodes on this rank")
        clip = nested_get(self.cfg, "actor.optim.clip_grad", 1.0)
        history = []
        for _ in range(self.stage2_steps if steps is None else int(steps)):
            demo = S.take(next(demos), slice(0, n_demo)) if n_demo else None
            batch = mixed_batch(demo, self.d_rl.sample(n_rl) if n_rl else None)
            step = stage2_step(model, optimizer, batch, clip_grad=clip, temperature=self.stage2_temperature)
            history.append({**step,
                            "ire_vla/demo_rows": float(n_demo), "ire_vla/d_rl_rows": float(n_rl)})  # fmt: skip
        return history

    # ------------------------------------------------------------------------------------- task boundary
    def finish_task(self, model: torch.nn.Module, out_dir: Path, is_rank0: bool) -> dict[str, Any]:
        """Write this rank's D_RL to ``<out_dir>/ire_vla/d_rl_rank<r>.pt``; with ``crl.stage2_in_finish_task`` run
        Stage 2 and write the consolidated adapter (rank 0; collective). Returns the record."""
        state_dir = Path(out_dir) / STATE_SUBDIR
        self.d_rl.save(S.rank_file(state_dir, D_RL_STEM, self.rank))
        logger.info("iRe-VLA: D_RL %d episodes / %d samples on rank %d -> %s", self.d_rl.num_episodes, len(self.d_rl),
                    self.rank, state_dir)  # fmt: skip
        record: dict[str, Any] = {D_RL_KEY: str(state_dir), "d_rl_episodes": self.d_rl.num_episodes}
        if self.stage2_in_finish_task and self.stage2_steps > 0:
            demos = self.demo_batches(model, self.stage2_batch) if self.uses_demos else None
            history = self.consolidate(model, demos)
            logger.info("iRe-VLA stage 2: %d steps, last %s", len(history), history[-1] if history else {})
            record[STAGE2_ADAPTER_KEY] = str(save_adapter(model, state_dir / "stage2_adapter", is_rank0))
            record["stage2_last_loss"] = history[-1]["ire_vla/sft_loss"] if history else None
        return record


def save_adapter(model: torch.nn.Module, out_dir: Path, is_rank0: bool) -> Path:
    """The model's LoRA adapter (+ value head) as a PEFT adapter dir, written by rank 0 (collective gather)."""
    from vlacrl.distributed import torch_dist
    from vlacrl.models.adapter_files import write_adapter

    universe = {n for n, p in model.named_parameters() if "lora_" in n or "value_head" in n}
    with _all_trainable(model, universe):
        state = torch_dist.full_state_dict(model, trainable_only=True)
    if is_rank0:
        write_adapter(model, state, Path(out_dir))
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    return Path(out_dir)


@contextlib.contextmanager
def _all_trainable(model: torch.nn.Module, names: set[str]) -> Iterator[None]:
    """``requires_grad`` on for ``names`` (so ``full_state_dict(trainable_only)`` includes them), then restored."""
    params = {n: p for n, p in model.named_parameters() if n in names}
    saved = {n: p.requires_grad for n, p in params.items()}
    for param in params.values():
        param.requires_grad_(True)
    try:
        yield
    finally:
        for name, param in params.items():
            param.requires_grad_(saved[name])
