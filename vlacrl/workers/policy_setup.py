"""Build the policy a worker runs from the resolved config (shared by rollout and actor workers).

``actor.model.model_name`` picks a :class:`PolicyFamily` from :data:`FAMILIES`:

* ``openvla_oft`` — the HF-format OpenVLA-OFT directory with a PEFT LoRA adapter (and value head);
  checkpoints are adapter directories.
* ``simple_cnn`` — the Simple CNN baseline (docs/methods/simple_cnn.md), fully trained (no LoRA); checkpoints are
  ``model.pt`` files.

The rollout and the actor build the *same* model (same parameter names and shapes), so the actor's
trainable weights load into the rollout's model key for key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from vlacrl.models.lora import base_module, is_peft_model, setup_lora
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, load_policy
from vlacrl.models.simple_cnn_rl import RL_CHECKPOINT, SimpleCNNProcessor, load_rl_policy, square_image_size

logger = logging.getLogger(__name__)


def worker_device(use_gpu: bool) -> torch.device:
    return torch.device("cuda", 0) if use_gpu else torch.device("cpu")


def model_dtype(model_cfg: Mapping[str, Any], use_gpu: bool) -> torch.dtype:
    """bf16 on GPU as the reference; float32 on CPU (bf16 matmuls are slow and imprecise there)."""
    return torch.bfloat16 if use_gpu and model_cfg.get("precision", "bf16") == "bf16" else torch.float32


# ------------------------------------------------------------------------------------------ OpenVLA-OFT
def build_openvla_oft(cfg: Mapping[str, Any], model_dir: str, use_gpu: bool):
    """Load the HF-format checkpoint, attach the value head when needed, set up LoRA as configured.

    Returns the model (a ``PeftModel`` when ``actor.model.is_lora``) on the worker's device.
    """
    model_cfg = cfg["actor"]["model"]
    needs_values = bool(cfg["algorithm"].get("require_values", False))
    policy = load_policy(
        model_dir,
        dtype=model_dtype(model_cfg, use_gpu),
        device=worker_device(use_gpu),
        action_dim=int(model_cfg["action_dim"]),
        num_action_chunks=int(model_cfg["num_action_chunks"]),
        unnorm_key=model_cfg.get("unnorm_key"),
        vh_mode=model_cfg.get("vh_mode") if needs_values else None,
        value_type=str(model_cfg.get("value_type", "step_level")),
        attn_implementation=model_cfg.get("attn_implementation"),
    )
    if not model_cfg.get("is_lora", True):
        for param in policy.parameters():
            param.requires_grad = True
        return policy
    return setup_lora(
        policy,
        rank=int(model_cfg.get("lora_rank", 32)),
        lora_path=model_cfg.get("lora_path"),
        lora_paths=list(model_cfg.get("lora_paths") or []),
        merge_coefficient=float(model_cfg.get("previous_lora_merge_coefficient", 1.0)),
        lora_scale=float(model_cfg.get("lora_scale", 1.0)),
    )


def openvla_oft_processor(cfg: Mapping[str, Any], model_dir: str, model=None) -> OpenVLAOFTProcessor:
    return OpenVLAOFTProcessor.from_model_dir(model_dir, max_length=int(cfg["runner"]["max_prompt_length"]))


def save_openvla_oft(model, full_state: dict[str, torch.Tensor], actor_dir: Path) -> None:
    """LoRA: the PEFT adapter dir; full fine-tuning (``actor.model.is_lora=False``): an HF-format model dir.
    Both with ``value_head.safetensors`` when the model has a value head."""
    from vlacrl.models.adapter_files import write_adapter, write_value_head
    from vlacrl.models.openvla_oft.checkpoint import save_model_dir

    if is_peft_model(model):
        write_adapter(model, full_state, actor_dir)
        return
    save_model_dir(base_module(model), full_state, actor_dir)
    write_value_head(full_state, actor_dir)


def resume_openvla_oft(cfg: Mapping[str, Any], actor_dir: Path) -> dict[str, Any]:
    """Continue from ``actor_dir``: its adapter on the base model (LoRA), or the saved full model."""
    actor, model_cfg = cfg["actor"], cfg["actor"]["model"]
    if not model_cfg.get("is_lora", True):
        return {**cfg, "actor": {**actor, "checkpoint_load_path": str(actor_dir)}}
    return {**cfg, "actor": {**actor, "model": {**model_cfg, "lora_path": str(actor_dir)}}}


# ------------------------------------------------------------------------------------------ Simple CNN
def build_simple_cnn(cfg: Mapping[str, Any], path: str, use_gpu: bool):
    """The CNN from a checkpoint file (every parameter trainable), on the worker's device and dtype."""
    model_cfg = cfg["actor"]["model"]
    model = load_rl_policy(path, model_cfg.get("cnn_metadata_path"))
    model.train_dropout = bool(model_cfg.get("cnn_train_dropout", False))
    return model.to(device=worker_device(use_gpu), dtype=model_dtype(model_cfg, use_gpu))


def simple_cnn_processor(cfg: Mapping[str, Any], path: str, model=None) -> SimpleCNNProcessor:
    """The task-id map comes from the built ``model`` (loaded from ``path`` only when none is given)."""
    if model is None:
        model = load_rl_policy(path, cfg["actor"]["model"].get("cnn_metadata_path"))
    task_id_map = base_module(model).meta["task_id_map"]
    return SimpleCNNProcessor(task_id_map, square_image_size(cfg["actor"]["model"].get("image_size", 224)))


def save_simple_cnn(model, full_state: dict[str, torch.Tensor], actor_dir: Path) -> None:
    actor_dir.mkdir(parents=True, exist_ok=True)
    base_module(model).save(actor_dir / RL_CHECKPOINT, full_state)


def resume_simple_cnn(cfg: Mapping[str, Any], actor_dir: Path) -> dict[str, Any]:
    return {**cfg, "actor": {**cfg["actor"], "checkpoint_load_path": str(actor_dir / RL_CHECKPOINT)}}


@dataclass(frozen=True)
class PolicyFamily:
    """How one kind of policy is built, fed, saved and resumed."""

    build: Callable[[Mapping[str, Any], str, bool], torch.nn.Module]
    processor: Callable[..., Callable]  # (cfg, model path, built model or None)
    save: Callable[[torch.nn.Module, dict[str, torch.Tensor], Path], None]  # rank 0, full state
    resume_cfg: Callable[[Mapping[str, Any], Path], dict[str, Any]]  # cfg loading <ckpt>/actor
    trainable_only_state: bool  # checkpoints hold only trainable tensors (adapter) or the full model


FAMILIES: dict[str, PolicyFamily] = {
    "openvla_oft": PolicyFamily(build_openvla_oft, openvla_oft_processor, save_openvla_oft, resume_openvla_oft, True),
    "simple_cnn": PolicyFamily(build_simple_cnn, simple_cnn_processor, save_simple_cnn, resume_simple_cnn, False),
}


def family_name(cfg: Mapping[str, Any]) -> str:
    name = str(cfg["actor"]["model"].get("model_name", "openvla_oft"))
    if name not in FAMILIES:
        raise ValueError(f"actor.model.model_name: unknown {name!r}; choose one of {sorted(FAMILIES)}")
    return name


def policy_family(cfg: Mapping[str, Any]) -> PolicyFamily:
    return FAMILIES[family_name(cfg)]


def rollout_model_path(cfg: Mapping[str, Any]) -> str:
    """The rollout's model: ``rollout.checkpoint_path`` when set (CNN evaluation), else ``rollout.model_dir``."""
    return str(cfg["rollout"].get("checkpoint_path") or cfg["rollout"]["model_dir"])


def build_policy(cfg: Mapping[str, Any], model_path: str, use_gpu: bool):
    return policy_family(cfg).build(cfg, model_path, use_gpu)


def build_processor(cfg: Mapping[str, Any], model_path: str, model=None):
    """The batch builder of the policy at ``model_path``; pass the already built ``model`` to avoid a reload."""
    return policy_family(cfg).processor(cfg, model_path, model)
