"""Elastic Weight Consolidation on the LoRA parameters (docs/methods/ewc.md), correct under FSDP2 sharding.

* Parameters: every trainable parameter whose name contains ``lora`` (case-insensitive).
* Anchor θ*: the LoRA weights at the start of the stage (the adapter the stage loads), full tensors on CPU.
* Penalty per micro-batch: ``λ · Σ_i F_i (θ_i − θ*_i)²`` (no ½), λ = ``crl.ewc_lambda`` (1e6); a parameter
  whose contribution is NaN/Inf is skipped and a non-finite total becomes 0. Only when a previous Fisher exists.
* Fisher: during the stage's last global step, after every micro-batch backward, each LoRA gradient (the
  running sum over the mini-batch's micro-batches) is rescaled to L2 norm ≤ 100, squared, clamped ≤ 1e4 and
  added to an accumulator (clamped ≤ 1e4). At the end: NaN/+Inf → 1e4, −Inf → 0, ÷ number of mini-batches,
  clamp ≤ 1e4. Online accumulation: ``F_saved = clamp(F_prev + F_current, 1e4)``, written by rank 0 as
  ``torch.save({"fisher_dict": {name: F}}, <out_dir>/ewc_data.pt)`` (the reference's format).

The reference's FSDP caveat: its FSDP1 ``use_orig_params`` parameters and gradients are per-rank flat
shards, so with several ranks the per-parameter norm rescaling saw only a shard, the SUM all-reduce added
*different* shards position by position, and rank 0's mixture was saved. Here every gradient is gathered
to its full tensor (``DTensor.full_tensor()``, a collective all ranks call in the same order) before the
rescaling, so the Fisher is the same on every rank and equals the single-rank one; no cross-rank sum is
needed. The penalty keeps gradients flowing into the sharded parameters: F and θ* are split like each
parameter (``distribute_tensor``, no communication) and the per-parameter local sums are all-reduced into
the scalar value, while autograd sees only this rank's shard (so each shard gets exactly ∂penalty/∂shard).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Partial, Shard, distribute_tensor

from vlacrl.crl.base import StageRecord
from vlacrl.crl.common import MethodConfigError, nested_get
from vlacrl.crl.registry import register
from vlacrl.crl.seq_ft import SeqFT

logger = logging.getLogger(__name__)

FISHER_MAX = 1.0e4  # = GRAD_NORM_MAX²
GRAD_NORM_MAX = 100.0
DEFAULT_LAMBDA = 1.0e6
EWC_FILE = "ewc_data.pt"
_WRAPPER_SEGMENTS = frozenset({"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod"})


# ------------------------------------------------------------------------------------------ pure helpers
def canonical_name(name: str) -> str:
    """Parameter name without FSDP1 / activation-checkpoint / compile wrapper segments (the file's keys)."""
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_SEGMENTS)


def is_ewc_parameter(name: str, param: torch.Tensor) -> bool:
    """A trainable LoRA parameter (the reference's selection: ``"lora" in name.lower()``)."""
    return "lora" in name.lower() and param.requires_grad


def clean_fisher(fisher: torch.Tensor, max_value: float = FISHER_MAX) -> torch.Tensor:
    """NaN/+Inf → ``max_value`` (most important, not zero), −Inf → 0, then clamp ≤ ``max_value``; any shape."""
    return torch.nan_to_num(fisher.float(), nan=max_value, posinf=max_value, neginf=0.0).clamp(max=max_value)


def clipped_grad_square(
    grad: torch.Tensor, max_norm: float = GRAD_NORM_MAX, max_value: float = FISHER_MAX
) -> torch.Tensor:
    """``grad`` (any shape, float32 result) rescaled to L2 norm ≤ ``max_norm``, squared, clamped ≤ ``max_value``."""
    grad = grad.detach().float()
    norm = grad.norm()
    if norm > max_norm:
        grad = grad * (max_norm / norm)
    return (grad * grad).clamp(max=max_value)


def fisher_update(
    accumulator: torch.Tensor | None,
    grad: torch.Tensor,
    max_norm: float = GRAD_NORM_MAX,
    max_value: float = FISHER_MAX,
) -> torch.Tensor:
    """One micro-batch: ``clamp(acc + clipped_grad_square(grad), max_value)``; ``acc`` None = zeros (grad's shape)."""
    square = clipped_grad_square(grad, max_norm, max_value)
    base = torch.zeros_like(square) if accumulator is None else accumulator.to(square.device)
    return (base + square).clamp(max=max_value)


def finalize_fisher(accumulator: torch.Tensor, num_minibatches: int, max_value: float = FISHER_MAX) -> torch.Tensor:
    """After the last step: clean (NaN/+Inf → max, −Inf → 0), divide by the mini-batch count, clamp."""
    if num_minibatches <= 0:
        raise ValueError(f"num_minibatches must be positive, got {num_minibatches}")
    return (clean_fisher(accumulator, max_value) / num_minibatches).clamp(max=max_value)


def accumulate_online(
    previous: Mapping[str, torch.Tensor] | None, current: Mapping[str, torch.Tensor], max_value: float = FISHER_MAX
) -> dict[str, torch.Tensor]:
    """``clamp(F_prev + F_cur, max_value)`` per name; shape mismatch → current; names only in F_prev kept."""
    merged = {name: clean_fisher(f, max_value) for name, f in current.items()}
    for name, raw in (previous or {}).items():
        prev = clean_fisher(raw, max_value)
        if name not in merged:
            merged[name] = prev
        elif prev.shape == merged[name].shape:
            merged[name] = (prev + merged[name]).clamp(max=max_value)
        else:
            logger.warning("EWC: %s has shape %s in the previous Fisher, %s now; keeping the current one",
                           name, tuple(prev.shape), tuple(merged[name].shape))  # fmt: skip
    return merged


def ewc_penalty(
    params: Mapping[str, torch.Tensor],
    fisher: Mapping[str, torch.Tensor],
    anchor: Mapping[str, torch.Tensor],
    lam: float = DEFAULT_LAMBDA,
) -> torch.Tensor:
    """``lam · Σ F (θ − θ*)²`` over names present in all three with equal shapes (plain, unsharded tensors).

    A name whose contribution is NaN/Inf is skipped; a non-finite total gives 0. Returns a 0-dim tensor.
    """
    device = next(iter(params.values())).device if params else torch.device("cpu")
    total = torch.zeros((), device=device)
    for name, theta in params.items():
        if name not in fisher or name not in anchor or not fisher[name].shape == anchor[name].shape == theta.shape:
            continue
        term = (fisher[name].to(theta.device) * (theta.float() - anchor[name].to(theta.device)).square()).sum()
        if torch.isfinite(term.detach()):
            total = total + term
    return lam * total if torch.isfinite(total.detach()) else torch.zeros((), device=device)


def save_fisher(fisher: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """``torch.save({"fisher_dict": {name: CPU tensor}}, path)`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"fisher_dict": {k: v.detach().cpu() for k, v in fisher.items()}}, tmp)
    tmp.replace(path)
    return path


def load_fisher(path: str | Path, max_value: float = FISHER_MAX) -> dict[str, torch.Tensor]:
    """A Fisher file (ours or the reference's), keys canonicalised, NaN/Inf → ``max_value``, clamped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EWC Fisher file not found: {path} (written by the previous stage's finish_task)")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, Mapping) or "fisher_dict" not in data:
        raise MethodConfigError(f"{path}: expected a dict with key 'fisher_dict'")
    return {canonical_name(k): clean_fisher(v, max_value) for k, v in data["fisher_dict"].items()}


# ------------------------------------------------------------------------------- FSDP2-aware helpers
def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The unsharded tensor of a DTensor (a collective every rank must call), else ``tensor`` itself."""
    if not isinstance(tensor, DTensor):
        return tensor
    local, mesh = tensor.to_local(), tensor.device_mesh
    if local.device.type != mesh.device_type:  # CPU-offloaded shard on a GPU mesh
        tensor = DTensor.from_local(local.to(mesh.device_type), mesh, tensor.placements, shape=tensor.shape,
                                    stride=tensor.stride())  # fmt: skip
    return tensor.full_tensor()


def local_part(full: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """The slice of ``full`` (``param``'s global shape) that this rank holds, on the shard's device.

    Every rank holds the same ``full``, so no data moves between ranks (``src_data_rank=None``).
    """
    if not isinstance(param, DTensor):
        return full.to(param.device)
    local = distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None).to_local()
    return local.to(param.to_local().device)


def _shard_groups(param: DTensor) -> list[dist.ProcessGroup]:
    """Process groups of the mesh dims along which ``param`` is sharded (its local sums add up over them)."""
    mesh = param.device_mesh
    return [mesh.get_group(d) for d, p in enumerate(param.placements) if isinstance(p, (Shard, Partial))]


def reduce_local_sums(values: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """Per-parameter sums [n] (this rank's part for DTensors) → global sums [n]; one all-reduce per layout."""
    out = values.clone()
    layouts: dict[tuple, list[int]] = {}
    for i, param in enumerate(params):
        if isinstance(param, DTensor):
            layouts.setdefault((id(param.device_mesh), tuple(param.placements)), []).append(i)
    for indices in layouts.values():
        first = params[indices[0]]
        part = out[indices].to(first.device_mesh.device_type)
        for group in _shard_groups(first):
            dist.all_reduce(part, group=group)
        out[indices] = part.to(out.device)
    return out


def lora_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(canonical name, parameter)`` of every EWC parameter, in ``named_parameters`` order (same on all ranks)."""
    for name, param in model.named_parameters():
        if is_ewc_parameter(name, param):
            yield canonical_name(name), param


def adapter_anchor(adapter_dir: str | Path, names: list[str]) -> dict[str, torch.Tensor]:
    """LoRA weights of a saved adapter keyed like the model's parameters (``…lora_A.<adapter>.weight``)."""
    from peft.utils import load_peft_weights

    saved = load_peft_weights(str(adapter_dir), device="cpu")
    anchor = {}
    for name in names:
        key = re.sub(r"\.(lora_[A-Za-z_]+)\.[^.]+\.(weight|bias)$", r".\1.\2", name)
        if key in saved:
            anchor[name] = saved[key].detach().float()
    return anchor


@register("ewc")
class EWC(SeqFT):
    """Seq. FT chaining plus the EWC penalty towards the stage's starting LoRA weights; see the module docstring."""

    supports_full_finetuning = False  # its Fisher and anchor cover the LoRA tensors

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.lam = float(self.params.get("ewc_lambda", DEFAULT_LAMBDA))
        self.max_value = float(self.params.get("fisher_max", FISHER_MAX))
        self.max_norm = float(self.params.get("fisher_grad_norm_max", GRAD_NORM_MAX))
        self.previous_fisher: dict[str, torch.Tensor] | None = None
        self.anchor: dict[str, torch.Tensor] | None = None
        self._accumulator: dict[str, torch.Tensor] = {}
        self._minibatches = 0
        self._local: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    # -- driver side
    def train_overrides(self, stage_index: int, history: list[StageRecord]) -> dict[str, Any]:
        """Stage k > 0: Seq. FT's ``actor.model.lora_path`` plus ``crl.previous_fisher_path`` of stage k-1."""
        overrides = super().train_overrides(stage_index, history)
        if stage_index > 0:
            record = history[stage_index - 1]
            path = record.extra.get("fisher_path")
            if not path:
                raise MethodConfigError(f"ewc: stage {record.index} recorded no Fisher file (extra['fisher_path'])")
            overrides["crl.previous_fisher_path"] = str(path)
        return overrides

    # -- actor side
    def setup_actor(self, model: torch.nn.Module) -> None:
        """Load the previous Fisher (if any) and capture the anchor θ* (full tensors, before sharding)."""
        path = self.params.get("previous_fisher_path")
        if not path:
            logger.info("EWC: no previous Fisher; this stage trains without the penalty (its Fisher is still saved)")
            return
        self.previous_fisher = load_fisher(path, self.max_value)
        self.anchor = self._capture_anchor(model)
        matched = [n for n, p in lora_parameters(model) if self._usable(n, p)]
        logger.info("EWC: Fisher from %s; %d of %d LoRA tensors regularised (lambda %g)",
                    path, len(matched), len(self.anchor), self.lam)  # fmt: skip
        if not matched and self.anchor:
            logger.warning("EWC: no LoRA parameter matches the Fisher file's names/shapes; the penalty is 0")

    def _capture_anchor(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The stage's starting LoRA weights: the adapter file ``actor.model.lora_path`` names when it exists
        (so a resumed run anchors at the stage start, not at the resumed weights), else the model's weights."""
        anchor = {n: full_tensor(p.detach()).float().cpu().clone() for n, p in lora_parameters(model)}
        adapter = nested_get(self.cfg, "actor.model.lora_path")
        if adapter and Path(str(adapter)).is_dir():
            saved = adapter_anchor(adapter, list(anchor))
            anchor.update({n: t for n, t in saved.items() if t.shape == anchor[n].shape})
            if len(saved) < len(anchor):
                logger.warning("EWC: %d LoRA tensors not in %s; anchored at the built model's values",
                               len(anchor) - len(saved), adapter)  # fmt: skip
        return anchor

    def _usable(self, name: str, param: torch.Tensor) -> bool:
        fisher, anchor = self.previous_fisher or {}, self.anchor or {}
        return name in fisher and name in anchor and fisher[name].shape == anchor[name].shape == param.shape

    def _local_terms(self, name: str, param: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of (F, θ*) for ``param`` (cached per name and sharded/unsharded form)."""
        key = (name, isinstance(param, DTensor))
        if key not in self._local:
            self._local[key] = (local_part(self.previous_fisher[name], param), local_part(self.anchor[name], param))
        return self._local[key]

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """``λ Σ F (θ − θ*)²`` over the full tensors, as a scalar whose gradient reaches this rank's shards.

        Collective when parameters are DTensors. Value: the global sum (a non-finite parameter term is
        skipped, a non-finite total gives 0); autograd: only the local terms (each shard gets ∂/∂shard; an
        unsharded parameter gets the full gradient on every rank, which FSDP's gradient average keeps).
        """
        params, terms = [], []
        for name, param in lora_parameters(model):
            if self._usable(name, param):
                fisher, anchor = self._local_terms(name, param)
                theta = param.to_local() if isinstance(param, DTensor) else param
                terms.append((fisher * (theta.float() - anchor).square()).sum())
                params.append(param)
        if not terms:
            return torch.zeros(())
        values = reduce_local_sums(torch.stack([t.detach() for t in terms]), params)
        finite = torch.isfinite(values)
        total = values[finite].sum()
        if not torch.isfinite(total):
            return torch.zeros((), device=total.device)
        graph = torch.stack([t for t, keep in zip(terms, finite.tolist()) if keep]).sum()
        return self.lam * (graph + (total - graph.detach()))

    def extra_losses(self, model, outputs, replay) -> dict[str, torch.Tensor]:
        """``{"ewc": penalty}`` once a previous Fisher exists (stages after the first), else nothing."""
        if self.previous_fisher is None or self.anchor is None:
            return {}
        return {"ewc": self.penalty(model)}

    def after_backward(self, model: torch.nn.Module, is_last_step: bool) -> None:
        """On the stage's last global step: add every LoRA gradient's clipped square (full tensors; collective)."""
        if not is_last_step:
            return
        for name, param in lora_parameters(model):
            if name not in self._accumulator:
                self._accumulator[name] = torch.zeros(tuple(param.shape), dtype=torch.float32)
            if param.grad is not None:
                grad = full_tensor(param.grad).cpu()
                self._accumulator[name] = fisher_update(self._accumulator[name], grad, self.max_norm, self.max_value)

    def after_optimizer_step(self, model: torch.nn.Module, is_last_step: bool) -> None:
        """Count the last step's mini-batches (the Fisher is divided by their number)."""
        if is_last_step:
            self._minibatches += 1

    def current_fisher(self) -> dict[str, torch.Tensor]:
        """This stage's Fisher: the accumulator cleaned, divided by the mini-batch count, clamped."""
        if not self._accumulator or self._minibatches == 0:
            raise RuntimeError("EWC: no Fisher was accumulated; the stage's last global step must run with "
                               "is_last_step=True")  # fmt: skip
        return {n: finalize_fisher(a, self._minibatches, self.max_value) for n, a in self._accumulator.items()}

    def finish_task(self, model: torch.nn.Module, out_dir: Path, is_rank0: bool) -> dict[str, Any]:
        """Online accumulation with the previous Fisher; rank 0 writes ``out_dir/ewc_data.pt``."""
        merged = accumulate_online(self.previous_fisher, self.current_fisher(), self.max_value)
        path = Path(out_dir) / EWC_FILE
        if is_rank0:
            save_fisher(merged, path)
            logger.info("EWC: saved the Fisher of %d LoRA tensors to %s", len(merged), path)
        self._accumulator, self._minibatches = {}, 0
        return {"fisher_path": str(path)}
