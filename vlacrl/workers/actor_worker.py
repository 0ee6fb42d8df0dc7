"""ActorWorker: one FSDP2 rank that turns rollout batches into policy updates.

Per global step (docs/architecture.md): rollout layout → actor layout → loss mask → group filter →
advantages → flatten + one shared shuffle → mini-batches of ``global_batch_size / actor_ws`` samples
→ micro-batches (gradient accumulation) → grad-norm clip → AdamW step. AdamW is built as the
reference builds it: groups with only ``lr`` and ``betas`` (so eps = 1e-8, weight_decay = 0.01).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.distributed as dist

from vlacrl.algorithms import (
    AlgorithmConfig,
    compute_actor_loss,
    concat_env_ranges,
    flatten_and_shuffle,
    iter_microbatches,
    iter_minibatches,
    make_update_schedule,
    mean_metrics,
    prepare_batch,
    slice_env_range,
)
from vlacrl.crl.registry import build_method
from vlacrl.distributed import torch_dist
from vlacrl.distributed.optimizer_state import load_optimizer, save_optimizer
from vlacrl.metrics.timers import PhaseTimer
from vlacrl.models.families import family_of
from vlacrl.models.inputs import MODEL_INPUT_KEYS
from vlacrl.models.lora import base_module
from vlacrl.workers.errors import annotated
from vlacrl.workers.info import WorkerInfo, group_work
from vlacrl.workers.policy_setup import build_policy, worker_device

logger = logging.getLogger(__name__)


def _grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Total gradient norm of ``params`` (before clipping them to ``max_norm``; ``inf`` only measures)."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def build_optimizer(model: torch.nn.Module, optim_cfg: Mapping[str, Any], method=None) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: the method's groups (SLCA), else value head at ``value_lr``
    and everything else at ``lr``."""
    groups = method.param_groups(model, optim_cfg) if method is not None else None
    if groups:
        return torch.optim.AdamW(groups)
    betas = (float(optim_cfg["adam_beta1"]), float(optim_cfg["adam_beta2"]))
    main, head = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if "value_head" in name else main).append(param)
    groups = [{"params": main, "lr": float(optim_cfg["lr"]), "betas": betas}]
    if head:
        groups.append({"params": head, "lr": float(optim_cfg["value_lr"]), "betas": betas})
    return torch.optim.AdamW(groups)


class ActorWorker(WorkerInfo):
    """One actor rank: FSDP2-sharded policy, AdamW, the RL update."""

    role = "actor"

    def __init__(self, cfg: Mapping[str, Any], rank: int, world_size: int, use_gpu: bool = False):
        self.cfg, self.rank, self.world_size, self.use_gpu = cfg, rank, world_size, use_gpu
        self.device = worker_device(use_gpu)
        self.timer = PhaseTimer(self._synchronize)  # time/actor_forward, _backward, _optimizer of this rank
        self.algo = AlgorithmConfig.from_mapping(cfg["algorithm"])
        self.require_values = bool(cfg["algorithm"].get("require_values", False))
        sampling = cfg["algorithm"]["sampling_params"]
        self.temperature = float(sampling["temperature_train"])
        self.top_k = int(sampling.get("top_k", -1)) if int(sampling.get("top_k", -1)) > 0 else None
        self.model = None
        self.optimizer = None
        self.global_step = 0
        self.method = build_method(cfg)
        self.family = family_of(cfg)

    @annotated
    def master_address(self) -> tuple[str, int]:
        """Address and a free port of this rank (the driver asks rank 0)."""
        return torch_dist.host_address(), torch_dist.free_port()

    @annotated
    def setup(self, master_addr: str, master_port: int, resume_dir: str | None = None, global_step: int = 0) -> int:
        """Join the process group, build and shard the policy, create the optimizer; returns #trainable.

        With ``resume_dir`` (a complete checkpoint) the adapter, value head and AdamW state come from it, and
        ``global_step`` is the step it was saved at (the driver reads it from ``trainer_state.json``).
        """
        torch_dist.init_process_group(self.rank, self.world_size, master_addr, master_port, self.use_gpu)
        torch.manual_seed(int(self.cfg["actor"].get("seed", 0)))  # identical LoRA init on every rank
        cfg = self.cfg
        if resume_dir is not None:
            cfg = self.family.resume_cfg(cfg, Path(resume_dir) / "actor")
        model = build_policy(cfg, str(cfg["actor"]["checkpoint_load_path"]), self.use_gpu)
        if resume_dir is not None:
            self.family.load_extra_state(model, Path(resume_dir) / "actor")
        self.method.setup_actor(model)
        policy = base_module(model)
        if cfg["actor"]["model"].get("gradient_checkpointing", True):
            policy.enable_gradient_checkpointing()
        torch_dist.shard(policy, use_gpu=self.use_gpu, cpu_offload=bool(cfg["actor"]["model"].get("cpu_offload")))
        self.model = model.train()
        self.optimizer = build_optimizer(model, cfg["actor"]["optim"], self.method)
        if resume_dir is not None:
            load_optimizer(self.model, self.optimizer, Path(resume_dir) / "actor" / "optim")
            self.global_step = int(global_step)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    @annotated
    def save_checkpoint(self, out_dir: str) -> None:
        """Write the weights (rank 0: the adapter, or the CNN's ``model.pt``) and the sharded optimizer state
        into ``out_dir/actor``; collective."""
        state = torch_dist.full_state_dict(self.model, trainable_only=self.family.trainable_only_state)
        actor_dir = Path(out_dir) / "actor"
        if self.rank == 0:
            self.family.save(self.model, state, actor_dir)
        save_optimizer(self.model, self.optimizer, actor_dir / "optim")
        if dist.is_initialized():
            dist.barrier()

    @annotated
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Full (unsharded) trainable weights on CPU; collective, rank 0 gets them, others ``{}``."""
        state = torch_dist.full_state_dict(self.model, trainable_only=True)
        return state if self.rank == 0 else {}

    # -- one global step --------------------------------------------------------------------------------
    def _forward(self, micro: dict[str, torch.Tensor]):
        """Policy outputs of the RL micro-batch and, when the method replays data, of its replay batch.

        The replay batch (same model-input keys; ``action_tokens`` are the expert tokens) is concatenated
        to the RL half for one forward, then the outputs are split back (docs/methods/er.md).
        """
        replay = self.method.replay_batch()
        inputs = {k: micro[k].to(self.device) for k in MODEL_INPUT_KEYS}
        size = inputs["input_ids"].shape[0]
        if replay is not None:
            for key in MODEL_INPUT_KEYS:
                extra = replay[key].to(self.device, inputs[key].dtype).reshape(-1, *inputs[key].shape[1:])
                inputs[key] = torch.cat([inputs[key], extra])
        out = base_module(self.model).action_logprobs(
            inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], inputs["action_tokens"],
            temperature=self.temperature, top_k=self.top_k,
        )  # fmt: skip
        rl_out = {k: v[:size] for k, v in out.items()}
        if replay is None:
            return rl_out, None
        replay_out = {**replay, **{k: v[size:] for k, v in out.items()}}
        return rl_out, replay_out

    def _micro_loss(self, micro: dict[str, torch.Tensor], accumulation: int, is_last_step: bool) -> dict[str, float]:
        with self.timer.phase("actor_forward"):
            loss, metrics = self._micro_forward(micro)
        with self.timer.phase("actor_backward"):
            (loss / accumulation).backward()
            self.method.after_backward(self.model, is_last_step)
        return metrics

    def _micro_forward(self, micro: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The micro-batch's total loss (RL loss + the method's extra terms) and its metrics."""
        model_cfg = self.cfg["actor"]["model"]
        out, replay = self._forward(micro)
        out = {**out, **{k: micro[k].to(self.device) for k in self.method.batch_keys if k in micro}}
        values = self.method.policy_values(out) if self.require_values else None
        if values is not None and out.get("values") is not None:  # repeated over a step-level head's width
            values = values.expand(-1, out["values"].shape[-1])
        loss, metrics = compute_actor_loss(
            self.algo,
            action_dim=int(model_cfg["action_dim"]),
            max_episode_steps=int(self.cfg["env"]["train"]["max_episode_steps"]),
            logprobs=out["logprobs"].float(),
            old_logprobs=micro["prev_logprobs"].to(self.device),
            entropy=out["entropy"].float(),
            advantages=micro["advantages"].to(self.device),
            returns=micro["returns"].to(self.device),
            loss_mask=micro["loss_mask"].to(self.device),
            loss_mask_sum=micro["loss_mask_sum"].to(self.device),
            values=values if values is not None else out.get("values"),
            prev_values=micro["prev_values"].to(self.device),
        )
        total = loss
        metrics["rl/loss"] = float(loss.detach())
        for name, term in self.method.extra_losses(self.model, out, replay).items():
            total = total + term
            metrics[f"{name}/loss"] = float(term.detach())
        metrics["total/loss"] = float(total.detach())
        metrics.update(self.method.pop_metrics())
        return total, metrics

    @annotated
    @group_work
    def train_step(
        self, *parts: dict[str, torch.Tensor], env_range: tuple[int, int] | None = None, is_last_step: bool = False
    ) -> dict[str, float]:
        """One global step on this rank's envs; returns metrics averaged over all actor ranks.

        ``parts``: rollout batches of consecutive env ranges (rollout layout), concatenated along the env axis;
        ``env_range``: the envs ``[start, stop)`` of that concatenation this rank trains on (None: all of them).
        The driver plans both (``vlacrl.distributed.resharding.actor_shards``).
        """
        start = time.perf_counter()
        batch = concat_env_ranges(list(parts))
        if env_range is not None:
            batch = slice_env_range(batch, *env_range)
        batch, rollout_stats = prepare_batch(batch, self.algo, use_values=self.require_values)
        batch.update(self.method.observe_rollout(batch))
        generator = torch.Generator().manual_seed(int(self.cfg["actor"].get("seed", 0)) * 100003 + self.global_step)
        flat = flatten_and_shuffle(batch, generator=generator)
        size = next(iter(flat.values())).shape[0]
        schedule = make_update_schedule(
            size, int(self.cfg["actor"]["global_batch_size"]),
            int(self.cfg["actor"]["micro_batch_size"]), self.world_size,
        )  # fmt: skip
        per_micro, grad_norms = [], []
        self.model.train()
        for mini in iter_minibatches(flat, schedule):
            self.optimizer.zero_grad(set_to_none=True)
            for micro in iter_microbatches(mini, schedule):
                per_micro.append(self._micro_loss(micro, schedule.num_microbatches, is_last_step))
            with self.timer.phase("actor_optimizer"):
                grad_norms.append(self._clip_and_step())
                self.method.after_optimizer_step(self.model, is_last_step)
            if self.method.stop_update():
                break
        self.global_step += 1
        metrics = {f"train/{k}": v for k, v in mean_metrics(per_micro).items()}
        metrics["train/actor/grad_norm"] = sum(grad_norms) / len(grad_norms)
        metrics["train/actor/lr"] = float(self.optimizer.param_groups[0]["lr"])
        metrics.update(rollout_stats)
        metrics = self._average_across_ranks(metrics)
        metrics.update(self.timer.pop())
        metrics["time/actor_training"] = time.perf_counter() - start
        return metrics

    def _synchronize(self) -> None:
        """Wait for queued GPU work, so that a phase's time is its own (a no-op on CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @annotated
    def finish_task(self, out_dir: str) -> dict[str, Any]:
        """The method's end-of-task work (Fisher, ...) on every rank; rank 0's record is returned."""
        record = self.method.finish_task(self.model, Path(out_dir), self.rank == 0)
        if dist.is_initialized():
            dist.barrier()
        return record if self.rank == 0 else {}

    def _clip_and_step(self) -> float:
        """Clip the gradients, step AdamW; returns the gradient norm (before clipping) of the jointly clipped groups.

        All parameter groups are clipped together to ``actor.optim.clip_grad`` (the reference), except groups a
        method marks ``own_clip`` (the CRL-VLA critic), which are clipped alone so that a critic's loss scale
        does not shrink the policy's step. With ``actor.optim.skip_zero_grad_steps`` a group whose gradient is
        exactly zero (every sample filtered, no extra loss reaching it) is not stepped: AdamW would move it on
        momentum alone.
        """
        optim = self.cfg["actor"]["optim"]
        clip = float(optim["clip_grad"])
        groups = [[p for p in g["params"] if p.requires_grad] for g in self.optimizer.param_groups]
        own = [bool(g.get("own_clip")) for g in self.optimizer.param_groups]
        norm = _grad_norm([p for ps, alone in zip(groups, own) if not alone for p in ps], clip)
        for params in (ps for ps, alone in zip(groups, own) if alone):
            _grad_norm(params, clip)
        if optim.get("skip_zero_grad_steps", False):
            idle = [ps for ps in groups if _grad_norm(ps, float("inf")) == 0.0]
            if len(idle) == len(groups):
                return 0.0
            for param in (p for ps in idle for p in ps):
                param.grad = None  # AdamW leaves parameters without a gradient alone
        self.optimizer.step()
        return norm

    def _average_across_ranks(self, metrics: dict[str, float]) -> dict[str, float]:
        """Means averaged over the actor ranks; extremes (``*_max`` / ``*_min``) max / min reduced."""
        if not dist.is_initialized() or self.world_size == 1:
            return metrics
        keys = sorted(metrics)
        values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=self.device)
        sign = torch.tensor([-1.0 if k.endswith("_min") else 1.0 for k in keys], dtype=torch.float64)
        extremes = values * sign.to(self.device)  # min(x) = -max(-x)
        dist.all_reduce(values)
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
        extremes = (extremes * sign.to(self.device)).tolist()
        return {
            k: extremes[i] if k.endswith(("_max", "_min")) else float(values[i]) / self.world_size
            for i, k in enumerate(keys)
        }
