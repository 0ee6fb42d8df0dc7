"""CRL-VLA (``crl.method=crl_vla``): dual goal-conditioned critic + old-task buffer, on one chained LoRA adapter.

Per stage (task), on every actor rank:

* ``setup_actor``: the GCVF critics (:mod:`.gcvf`) are attached to the policy as ``crl_vla_critics``
  (trainable ``mc``, frozen ``frozen``), a :class:`FeatureTap` captures h(s) and e(g) in every forward; from the
  second stage on, the previous stage's critics and B_old are loaded from ``crl.previous_state_dir``.
* ``observe_rollout`` (per global step, actor-layout batch): MC returns G per chunk step (returned as the
  extra batch key ``crl_returns`` with the validity mask ``crl_mask``) and the reservoir of this task's samples.
* ``replay_batch``: a B_old batch (old prompts/images/actions + π_old logits + V_old + G) for the actor to
  concatenate to the RL micro-batch.
* ``extra_losses``: ``η·L_MC`` on the new rows, ``α·KL(π_old‖π)`` and ``β·(V_frozen − V_old)²`` on the B_old rows.
* ``after_optimizer_step`` / ``stop_update``: PPO-style early stop of the global step's remaining mini-batches
  once the sampled KL of a mini-batch exceeds ``crl.target_kl``.
* ``finish_task``: copy mc → frozen, add the reservoir's samples to B_old, record π_old logits and V_old on
  every B_old row (old tasks' too: both terms then measure drift from the end of the previous task), write
  ``<out_dir>/crl_vla/critics.pt`` (rank 0) and ``b_old_rank<r>.pt`` (every rank).

See docs/methods/crl_vla.md for the maths, defaults and what the workers must wire.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.distributed as dist

from vlacrl.crl.base import StageRecord
from vlacrl.crl.common import MethodConfigError, nested_get
from vlacrl.crl.crl_vla import losses as L
from vlacrl.crl.crl_vla import samples as S
from vlacrl.crl.crl_vla.buffer import POOL_KEYS, OldTaskBuffer, Reservoir
from vlacrl.crl.crl_vla.gcvf import CRITICS_ATTR, FeatureTap, GCVFCritics, build_critics, tokens_to_normalized_actions
from vlacrl.crl.ewc import full_tensor
from vlacrl.crl.registry import register
from vlacrl.crl.seq_ft import SeqFT
from vlacrl.models.families import ActionVocabulary, family_of
from vlacrl.models.inputs import MODEL_INPUT_KEYS
from vlacrl.models.lora import base_module

logger = logging.getLogger(__name__)

STATE_SUBDIR = "crl_vla"
CRITICS_FILE = "critics.pt"
B_OLD_STEM = "b_old"
RECORD_KEY = "crl_vla_dir"
DEFAULTS: dict[str, Any] = {
    "critic": "v", "alpha": 1.0e-5, "beta_v": 1.0e-3, "beta_q": 1.0e-2, "eta": 1.0, "critic_hidden": 1024,
    "target_kl": 0.02, "b_old_per_task": 256, "b_old_capacity": 1024, "reset_mc_critic": True,
    "old_terms_need_rl": True,
}  # fmt: skip
POOL_INPUT_KEYS = MODEL_INPUT_KEYS


def _param(params: Mapping[str, Any], key: str) -> Any:
    value = params.get(key)
    return DEFAULTS[key] if value is None and key in DEFAULTS and key not in params else value


def shard_critics(critics: GCVFCritics, device: torch.device, cpu_offload: bool) -> None:
    """Make each critic head its own FSDP2 unit (as the actor's blocks: bf16 compute on GPU), so that it can be
    called outside the policy's root forward. No-op without a process group (unit tests, rollout workers)."""
    if not dist.is_initialized():
        return
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    kwargs: dict[str, Any] = {}
    if device.type == "cuda":
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    fully_shard(critics.mc, **kwargs)
    fully_shard(critics.frozen, **kwargs)


def mc_trains_backbone(setting: Any, cfg: Mapping[str, Any]) -> bool:
    """Whether η·L_MC reaches the backbone LoRA through h(s) (``crl.mc_backbone_grad``; null = auto).

    Auto: yes when V_MC is the advantage baseline (GAE, ``algorithm.adv_type: embodied_gae``), as a PPO value
    head trains the shared backbone; no under GRPO, whose advantages are group-normalised and never read V_MC,
    so L_MC trains the MC head alone (docs/methods/crl_vla.md, "GRPO port").
    """
    if setting is not None:
        if not isinstance(setting, bool):
            raise MethodConfigError(f"crl.mc_backbone_grad must be true, false or null, got {setting!r}")
        return setting
    return str(nested_get(cfg, "algorithm.adv_type", "embodied_grpo")) == "embodied_gae"


def has_rl_loss(loss_mask: torch.Tensor | None) -> bool:
    """Whether any sample of this global step, on any actor rank, enters the RL loss (GRPO keeps some group).

    With every group filtered the RL gradient is exactly 0; the old-task terms alone would then drive AdamW,
    whose update is ~lr·sign(g) however small g is, so with ``crl.old_terms_need_rl`` they are not applied.
    """
    local = 1 if loss_mask is None or bool(loss_mask.any()) else 0
    return bool(_max_over_ranks(local))


def _max_over_ranks(value: int) -> int:
    if not dist.is_initialized():
        return value
    backend_gpu = dist.get_backend() == "nccl"
    tensor = torch.tensor([value], device="cuda" if backend_gpu else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


@register("crl_vla")
class CRLVLA(SeqFT):
    """CRL-VLA; see the module docstring and configs/crl/crl_vla.yaml."""

    supports_full_finetuning = False  # its critics and B_old chain with the adapter; not built for full weights

    # micro-batch keys the actor must copy into ``outputs`` before calling :meth:`extra_losses`
    batch_keys = ("crl_returns", "crl_mask", "advantages", "loss_mask", "prev_logprobs", "input_ids",
                  "attention_mask", "action_tokens")  # fmt: skip

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        p = self.params
        self.critic_kind = str(_param(p, "critic"))
        if self.critic_kind not in ("v", "q"):
            raise MethodConfigError(f"crl.critic must be 'v' or 'q', got {self.critic_kind!r}")
        self.alpha = float(_param(p, "alpha"))
        self.beta = float(_param(p, "beta_v" if self.critic_kind == "v" else "beta_q"))
        self.eta = float(_param(p, "eta"))
        self.critic_hidden = int(_param(p, "critic_hidden"))
        self.critic_lr = float(p.get("critic_lr") or nested_get(cfg, "actor.optim.value_lr", 3.0e-3))
        self.gamma = float(p.get("gamma") if p.get("gamma") is not None else nested_get(cfg, "algorithm.gamma", 0.99))
        self.temperature = float(
            p.get("kl_temperature") or nested_get(cfg, "algorithm.sampling_params.temperature_train", 1.0)
        )
        target = _param(p, "target_kl")
        self.target_kl = None if target is None else float(target)
        self.per_task = int(_param(p, "b_old_per_task"))
        capacity = _param(p, "b_old_capacity")
        self.capacity = None if capacity is None else int(capacity)
        self.b_old_batch = int(p.get("b_old_batch_size") or nested_get(cfg, "actor.micro_batch_size", 1))
        self.seed = int(p["sample_seed"] if p.get("sample_seed") is not None else nested_get(cfg, "actor.seed", 0))
        self.reset_mc_critic = bool(_param(p, "reset_mc_critic"))
        self.old_terms_need_rl = bool(_param(p, "old_terms_need_rl"))
        self._rl_signal = True  # does this global step have an RL loss on some rank (observe_rollout)?
        self.mc_trains_backbone = mc_trains_backbone(p.get("mc_backbone_grad"), cfg)
        if min(self.alpha, self.beta, self.eta) < 0 or self.per_task < 0 or self.b_old_batch < 1:
            raise MethodConfigError("crl.alpha/beta/eta and crl.b_old_per_task must be >= 0, b_old_batch_size >= 1")
        self.critics: GCVFCritics | None = None
        self.tap: FeatureTap | None = None
        self.buffer = OldTaskBuffer(self.capacity)
        self.pool = Reservoir(self.per_task, self.seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.rank = 0
        self.vocabulary: ActionVocabulary | None = None  # the policy family's action tokens (setup_actor)
        self._metrics: dict[str, float] = {}
        self._kl_sum, self._kl_count, self._stop = 0.0, 0, False

    # ------------------------------------------------------------------------------------- driver side
    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Seq. FT chaining plus ``crl.previous_state_dir`` (critics + B_old) of stage k − 1."""
        overrides = super().train_overrides(stage_index, history)
        if stage_index > 0:
            record = history[stage_index - 1]
            state_dir = record.extra.get(RECORD_KEY)
            if not state_dir:
                raise MethodConfigError(f"crl_vla: stage {record.index} recorded no state dir (extra[{RECORD_KEY!r}])")
            overrides["crl.previous_state_dir"] = str(state_dir)
        return overrides

    # ------------------------------------------------------------------------------------- set-up
    def setup_actor(self, model: torch.nn.Module) -> None:
        """Attach the critics (previous stage's when given), install the feature tap, load B_old (before FSDP)."""
        self._attach(model)
        previous = self.params.get("previous_state_dir")
        if previous:
            self._load_previous(Path(str(previous)))
        policy = base_module(model)
        reference = policy.language_model.lm_head.weight
        shard_critics(self.critics, reference.device, bool(nested_get(self.cfg, "actor.model.cpu_offload", False)))
        logger.info("CRL-VLA: %s critic, B_old %d samples %s on rank %d", self.critic_kind.upper(), len(self.buffer),
                    self.buffer.task_counts(), self.rank)  # fmt: skip

    def setup_rollout(self, model: torch.nn.Module) -> None:
        """Rollout copy: the same critic modules (the MC head's weights then arrive with the weight sync)."""
        self._attach(model)

    def _attach(self, model: torch.nn.Module) -> None:
        policy = base_module(model)
        self.rank, world = S.rank_and_world()
        reference = policy.language_model.lm_head.weight
        critics = build_critics(
            self.critic_kind, policy.config.hidden_size, policy.num_action_tokens, self.critic_hidden
        )
        critics.reset_mc(self.seed)
        critics.copy_mc_to_frozen()
        self.critics = critics.to(reference.device, reference.dtype)
        policy.add_module(CRITICS_ATTR, self.critics)
        self.tap = FeatureTap(policy)
        self.vocabulary = family_of(self.cfg).action_vocabulary(model)
        self.pool = Reservoir(self.per_task, self.seed * 1000 + self.rank)
        self.generator = torch.Generator().manual_seed(self.seed * 1000 + self.rank + 1)

    def _load_previous(self, state_dir: Path) -> None:
        """Critics from ``critics.pt`` (mc fresh when ``reset_mc_critic``); B_old from every rank file, re-sharded."""
        state = S.load(state_dir / CRITICS_FILE)
        if state.get("kind") != self.critic_kind:
            raise MethodConfigError(f"{state_dir}: critics are of kind {state.get('kind')!r}, crl.critic is "
                                    f"{self.critic_kind!r}")  # fmt: skip
        self.critics.frozen.load_state_dict(state["frozen"])
        if not self.reset_mc_critic:
            self.critics.mc.load_state_dict(state["mc"])
        files = S.rank_files(state_dir, B_OLD_STEM)
        if not files:
            raise FileNotFoundError(f"no {B_OLD_STEM}_rank*.pt in {state_dir}")
        rank, world = S.rank_and_world()
        merged = OldTaskBuffer.merge([OldTaskBuffer.load(f) for f in files], self.capacity)
        self.buffer = merged.shard(rank, world)
        self.buffer.capacity = self.capacity

    def param_groups(self, model: torch.nn.Module, optim_cfg: Mapping[str, Any]) -> list[dict] | None:
        """The actor's default groups (``lr``; value head at ``value_lr``) plus the MC critic at ``crl.critic_lr``,
        clipped on its own (``own_clip``: its loss scale must not shrink the policy's clipped step)."""
        betas = (float(optim_cfg["adam_beta1"]), float(optim_cfg["adam_beta2"]))
        critic_ids = {id(p) for p in self.critics.parameters()} if self.critics is not None else set()
        members: dict[str, list] = {"policy": [], "value_head": [], "crl_vla_critic": []}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            key = "value_head" if "value_head" in name else "policy"
            members["crl_vla_critic" if id(param) in critic_ids else key].append(param)
        lrs = {"policy": float(optim_cfg["lr"]), "value_head": float(optim_cfg["value_lr"]),
               "crl_vla_critic": self.critic_lr}  # fmt: skip
        return [{"params": ps, "lr": lrs[k], "betas": betas, "name": k, "own_clip": k == "crl_vla_critic"}
                for k, ps in members.items() if ps]  # fmt: skip

    # ------------------------------------------------------------------------------------- per global step
    def observe_rollout(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Actor-layout batch (after masks/advantages) → extra keys ``crl_returns``/``crl_mask`` [N, M, 1]; the
        valid samples are offered to this task's reservoir. Also starts a new early-stop window."""
        self._stop, self._kl_sum, self._kl_count = False, 0.0, 0
        self._rl_signal = has_rl_loss(batch.get("loss_mask"))
        returns = L.mc_returns(batch["rewards"], batch["dones"], self.gamma)
        n, m = returns.shape[:2]
        valid = batch.get("valid_mask", batch.get("loss_mask"))  # every real step, also of filtered GRPO groups
        if valid is not None:
            mask = valid.bool().any(dim=-1, keepdim=True)
        else:
            mask = torch.ones(n, m, 1, dtype=torch.bool)
        rows = {k: batch[k].reshape(n * m, *batch[k].shape[2:]) for k in POOL_INPUT_KEYS}
        rows["returns"] = returns.reshape(n * m)
        self.pool.offer(rows, torch.nonzero(mask.reshape(-1).cpu()).squeeze(-1))
        return {"crl_returns": returns, "crl_mask": mask}

    def replay_batch(self) -> dict[str, torch.Tensor] | None:
        """``crl.b_old_batch_size`` B_old rows (CPU), or None while B_old is empty (first stage)."""
        return self.buffer.sample(self.b_old_batch, self.generator)

    # ------------------------------------------------------------------------------------- losses
    def _action_encoding(self, tokens: torch.Tensor | None) -> torch.Tensor | None:
        if not self.critics.is_q:
            return None
        return tokens_to_normalized_actions(tokens, self.vocabulary)

    def _critic_inputs(self, rows: slice, input_ids, attention_mask, action_tokens, detach_state: bool = False):
        state = self.tap.state_feature(rows)
        state = state.detach() if detach_state else state
        goal = self.tap.goal_embedding(input_ids, attention_mask, rows)
        action = self._action_encoding(None if action_tokens is None else action_tokens.to(state.device))
        return state, goal, action

    def critic_values(
        self, head: str, input_ids, attention_mask, action_tokens=None, rows=slice(None), *, detach_state=False
    ):
        """Values [B] of ``head`` (``mc`` or ``frozen``) for rows ``rows`` of the policy's last forward; with
        ``detach_state`` no gradient reaches the backbone through h(s)."""
        state, goal, action = self._critic_inputs(rows, input_ids, attention_mask, action_tokens, detach_state)
        return getattr(self.critics, head)(state, goal, action)

    def extra_losses(
        self, model: torch.nn.Module, outputs: Mapping[str, torch.Tensor], replay: Mapping[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        """``crl_vla_mc`` = η·L_MC (new rows), ``crl_vla_kl`` = α·KL(π_old‖π), ``crl_vla_anchor`` = β·L_GCV (B_old).

        ``outputs``: the RL half's policy outputs plus the micro-batch keys :attr:`batch_keys`; ``replay``: the
        B_old batch merged with its outputs (``processed_logits``), or None.
        """
        missing = [k for k in ("crl_returns", "crl_mask", "input_ids", "attention_mask") if k not in outputs]
        if missing:
            raise KeyError(f"crl_vla: outputs lack the micro-batch keys {missing}; the actor must copy "
                           f"method.batch_keys into outputs and call observe_rollout")  # fmt: skip
        n_rl = int(outputs["input_ids"].shape[0])
        n_old = 0 if replay is None else int(replay["input_ids"].shape[0])
        if self.tap.action_hidden is None or self.tap.action_hidden.shape[0] != n_rl + n_old:
            raise RuntimeError("crl_vla: the last policy forward does not match this micro-batch (RL + B_old rows)")
        metrics: dict[str, float] = {}
        terms = {"crl_vla_mc": self.eta * self._new_task_terms(outputs, n_rl, metrics)}
        kl, anchor = self._old_task_terms(outputs, replay, n_rl, metrics)
        gate = 0.0 if self.old_terms_need_rl and not self._rl_signal else 1.0  # x0 keeps the backward's collectives
        terms.update(crl_vla_kl=gate * self.alpha * kl, crl_vla_anchor=gate * self.beta * anchor)
        metrics["crl_vla/old_terms_on"] = gate
        metrics["crl_vla/b_old_size"] = float(len(self.buffer))
        self._metrics = metrics
        return terms

    def _new_task_terms(self, outputs: Mapping[str, torch.Tensor], n_rl: int, metrics: dict) -> torch.Tensor:
        """L_MC on the valid RL rows; M_new = max |G − V_MC|; the sampled KL for the early stop."""
        values = self.critic_values("mc", outputs["input_ids"], outputs["attention_mask"],
                                    outputs.get("action_tokens"), slice(0, n_rl),
                                    detach_state=not self.mc_trains_backbone)  # fmt: skip
        returns = outputs["crl_returns"].reshape(-1).to(values.device)
        mask = outputs["crl_mask"].reshape(-1).bool().to(values.device)
        loss = L.mc_value_loss(values, returns, mask)
        metrics["crl_vla/mc_mse"] = float(loss.detach())
        metrics["crl_vla/v_mc_mean"] = float(values.detach().float().mean()) if n_rl else 0.0
        metrics["crl_vla/m_new_max"] = L.max_abs_advantage(returns - values.detach().float(), mask)
        if outputs.get("advantages") is not None:
            metrics["crl_vla/m_new_rl_max"] = L.max_abs_advantage(outputs["advantages"], outputs.get("loss_mask"))
        if outputs.get("prev_logprobs") is not None and outputs.get("logprobs") is not None:
            self._track_kl(outputs, metrics)
        return loss

    def _track_kl(self, outputs: Mapping[str, torch.Tensor], metrics: dict) -> None:
        logprobs = outputs["logprobs"]
        mask = outputs.get("loss_mask")
        if mask is not None:
            mask = mask.bool().to(logprobs.device)
            mask = mask.repeat_interleave(logprobs.shape[-1] // mask.shape[-1], dim=-1)
        kl = float(L.approx_kl(logprobs, outputs["prev_logprobs"], mask))
        self._kl_sum, self._kl_count = self._kl_sum + kl, self._kl_count + 1
        metrics["crl_vla/approx_kl"] = kl

    def _old_task_terms(self, outputs, replay, n_rl: int, metrics: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """KL(π_old‖π) and (V_frozen − V_old)² on the B_old rows (the frozen head runs even on 0 rows, so every
        rank makes the same FSDP calls)."""
        if replay is None:
            empty = slice(n_rl, n_rl)
            values = self.critic_values("frozen", outputs["input_ids"][:0], outputs["attention_mask"][:0],
                                        None if outputs.get("action_tokens") is None else outputs["action_tokens"][:0],
                                        empty)  # fmt: skip
            zero = values.float().sum() * 0.0
            return zero, zero
        rows = slice(n_rl, None)
        values = self.critic_values("frozen", replay["input_ids"], replay["attention_mask"],
                                    replay.get("action_tokens"), rows)  # fmt: skip
        device = values.device
        kl = L.kl_old(replay["old_logits"].to(device), replay["processed_logits"], temperature=self.temperature)
        anchor = L.value_anchor_loss(values, replay["old_values"].to(device))
        metrics["crl_vla/kl_old"] = float(kl.detach())
        metrics["crl_vla/anchor_mse"] = float(anchor.detach())
        metrics["crl_vla/m_old_max"] = L.max_abs_advantage(replay["returns"].to(device) - values.detach().float())
        return kl, anchor

    def pop_metrics(self) -> dict[str, float]:
        metrics, self._metrics = self._metrics, {}
        return metrics

    # ------------------------------------------------------------------------------------- early stop
    def after_optimizer_step(self, model: torch.nn.Module, is_last_step: bool) -> None:
        """Close the mini-batch's KL window: request a stop when its mean sampled KL exceeds ``crl.target_kl``."""
        if self._kl_count:
            kl = self._kl_sum / self._kl_count
            if L.kl_early_stop(kl, self.target_kl):
                self._stop = True
                logger.info("CRL-VLA: sampled KL %.4g > target %.4g; skipping the step's remaining mini-batches",
                            kl, self.target_kl)  # fmt: skip
        self._kl_sum, self._kl_count = 0.0, 0

    # ------------------------------------------------------------------------------------- PPO: V_MC for GAE
    def rollout_values(self, inputs: Mapping[str, torch.Tensor], action_tokens: torch.Tensor) -> torch.Tensor:
        """V_MC(s, g) [B, 1] of the rollout's last forward: PPO's GAE advantages come from the MC critic."""
        with torch.no_grad():
            tokens = action_tokens.reshape(action_tokens.shape[0], -1)
            return self.critic_values("mc", inputs["input_ids"], inputs["attention_mask"], tokens).float()[:, None]

    def policy_values(self, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Detached V_MC [B, 1] of the RL rows for the PPO loss: its value term is then constant (logged only);
        the MC critic trains through η·L_MC alone, on Monte-Carlo returns as the paper's dual critic."""
        n_rl = int(outputs["input_ids"].shape[0])
        values = self.critic_values("mc", outputs["input_ids"], outputs["attention_mask"],
                                    outputs.get("action_tokens"), slice(0, n_rl),
                                    detach_state=not self.mc_trains_backbone)  # fmt: skip
        return values.detach().float()[:, None]

    def stop_update(self) -> bool:
        """True once this global step should stop updating (checked by the actor after each optimizer step)."""
        return self._stop

    # ------------------------------------------------------------------------------------- task boundary
    def finish_task(self, model: torch.nn.Module, out_dir: Path, is_rank0: bool) -> dict[str, Any]:
        """mc → frozen; the reservoir's samples → B_old; every B_old row relabelled with this policy's π_old
        logits and the new frozen head's V_old (Algorithm 1: π_old = the policy at the end of the previous
        task); write critics + B_old files."""
        self.critics.copy_mc_to_frozen()
        rows = self.pool.samples()
        task_ids = nested_get(self.cfg, "env.fixed_task_ids", [-1])
        task_id = int(task_ids[0] if isinstance(task_ids, (list, tuple)) else task_ids)
        if rows:
            self.buffer.add_task(task_id, {k: rows[k] for k in POOL_KEYS})
        # every rank records, also with no rows: the forwards' collectives must stay in step
        self.buffer.relabel(self.record_targets(model, self.buffer.inputs()))
        state_dir = Path(out_dir) / STATE_SUBDIR
        critic_state = {h: {n: full_tensor(p.detach()).cpu() for n, p in getattr(self.critics, h).named_parameters()}
                        for h in ("mc", "frozen")}  # fmt: skip
        if is_rank0:
            S.save_atomic({"kind": self.critic_kind, **critic_state}, state_dir / CRITICS_FILE)
        self.buffer.save(S.rank_file(state_dir, B_OLD_STEM, self.rank))
        self.pool.clear()
        logger.info("CRL-VLA: B_old now %s (rank %d); state in %s", self.buffer.task_counts(), self.rank, state_dir)
        return {RECORD_KEY: str(state_dir), "b_old_size": len(self.buffer)}

    @torch.no_grad()
    def record_targets(self, model: torch.nn.Module, rows: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """π_old action-id logits [n, 56, 256] (float32) and frozen-critic values [n] for ``rows``, on CPU.

        Forwards in chunks of ``crl.b_old_batch_size``; every rank runs the same number of chunks (ranks with
        fewer rows repeat their first chunk and drop the result), as FSDP's all-gathers require.
        """
        policy = base_module(model)
        n, size = S.num_samples(rows), self.b_old_batch
        chunks = _max_over_ranks(math.ceil(n / size))
        if chunks and not n:
            raise RuntimeError("crl_vla: this rank has no samples for B_old while others have")
        device = policy.language_model.lm_head.weight.device
        dtype = policy.projector.fc1.weight.dtype
        begin, vocab = self.vocabulary.token_begin, self.vocabulary.token_end
        logits, values = [], []
        for index in range(chunks):
            start = index * size if index * size < n else 0
            part = {k: v[start : start + size].to(device) for k, v in rows.items()}
            pixels = part["pixel_values"].to(dtype)
            out = policy(part["input_ids"], part["attention_mask"], pixels, part["action_tokens"])
            value = self.critic_values("frozen", part["input_ids"], part["attention_mask"], part["action_tokens"])
            if index * size < n:
                logits.append(out.logits[..., begin:vocab].float().cpu())
                values.append(value.float().cpu())
        if not logits:
            return {}
        return {"old_logits": torch.cat(logits), "old_values": torch.cat(values)}
