"""OpenVLA-OFT as a :class:`~vlacrl.models.families.PolicyFamily` (``actor.model.model_name: openvla_oft``).

The HF-format OpenVLA-OFT directory with a PEFT LoRA adapter (and a value head for PPO); a checkpoint is the
adapter directory, or under full fine-tuning (``actor.model.is_lora=False``) a whole HF-format model directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from vlacrl.models.errors import LoraError, ModelDirError, ModelPathError
from vlacrl.models.families import ActionVocabulary, PolicyFamily, config_value, model_dtype, worker_device
from vlacrl.models.lora import base_module, check_adapter_dir, check_adapter_fits, is_peft_model, setup_lora

logger = logging.getLogger(__name__)


class OpenVLAOFTFamily(PolicyFamily):
    name = "openvla_oft"
    label = "OpenVLA-OFT"
    hf_model_dir = True
    action_chunks = 8
    trainable_only_state = True  # the adapter (full fine-tuning saves the whole model directory instead)
    supports_lora = True

    # ------------------------------------------------------------------------------------------ worker side
    def build(self, cfg: Mapping[str, Any], path: str, use_gpu: bool) -> torch.nn.Module:
        """Load the HF-format checkpoint, attach the value head when the algorithm needs values, set up LoRA.

        Returns the model (a ``PeftModel`` when ``actor.model.is_lora``) on the worker's device.
        """
        from vlacrl.models.openvla_oft.checkpoint import load_policy

        model_cfg = cfg["actor"]["model"]
        needs_values = bool(cfg["algorithm"].get("require_values", False))
        policy = load_policy(
            path,
            dtype=model_dtype(model_cfg, use_gpu),
            device=worker_device(use_gpu),
            action_dim=int(model_cfg["action_dim"]),
            num_action_chunks=int(model_cfg["num_action_chunks"]),
            unnorm_key=model_cfg.get("unnorm_key"),
            vh_mode=model_cfg.get("vh_mode") if needs_values else None,
            value_type=str(model_cfg.get("value_type", "step_level")),
            attn_implementation=model_cfg.get("attn_implementation"),
            policy_class=self.policy_class(),
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

    def policy_class(self) -> type:
        """The ``nn.Module`` class :meth:`build` loads the checkpoint into."""
        from vlacrl.models.openvla_oft.policy import OpenVLAOFTPolicy

        return OpenVLAOFTPolicy

    def processor(self, cfg: Mapping[str, Any], path: str, model: torch.nn.Module | None = None):
        from vlacrl.models.openvla_oft.processing import OpenVLAOFTProcessor

        return OpenVLAOFTProcessor.from_model_dir(path, max_length=int(cfg["runner"]["max_prompt_length"]))

    def save(self, model: torch.nn.Module, full_state: dict[str, torch.Tensor], actor_dir: Path) -> None:
        """LoRA: the PEFT adapter dir; full fine-tuning: an HF-format model dir. Both with
        ``value_head.safetensors`` when the model has a value head."""
        from vlacrl.models.adapter_files import write_adapter, write_value_head
        from vlacrl.models.openvla_oft.checkpoint import save_model_dir

        if is_peft_model(model):
            write_adapter(model, full_state, actor_dir)
            return
        save_model_dir(base_module(model), full_state, actor_dir)
        write_value_head(full_state, actor_dir)

    def resume_cfg(self, cfg: Mapping[str, Any], actor_dir: Path) -> dict[str, Any]:
        """Continue from ``actor_dir``: its adapter on the base model (LoRA), or the saved full model."""
        actor, model_cfg = cfg["actor"], cfg["actor"]["model"]
        if not model_cfg.get("is_lora", True):
            return {**cfg, "actor": {**actor, "checkpoint_load_path": str(actor_dir)}}
        return {**cfg, "actor": {**actor, "model": {**model_cfg, "lora_path": str(actor_dir)}}}

    def load_extra_state(self, model: torch.nn.Module, actor_dir: Path) -> None:
        """The value head saved beside the adapter (PPO), when there is one."""
        from vlacrl.models.adapter_files import load_value_head

        load_value_head(model, actor_dir)

    def action_vocabulary(self, model: torch.nn.Module) -> ActionVocabulary:
        policy = base_module(model)
        return ActionVocabulary(int(policy.token_begin), int(policy.config.tokenizer_vocab_size))

    # ------------------------------------------------------------------------------------------ driver side
    def trains_all_weights(self, cfg: Mapping[str, Any]) -> bool:
        return config_value(cfg, "actor.model.is_lora", True) is False

    def start_from(self, cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
        """LoRA: the stage's adapter on the base model; full fine-tuning: the saved model directory itself
        (``rollout.model_dir`` follows ``actor.checkpoint_load_path``)."""
        if self.trains_all_weights(cfg):
            return {"actor.checkpoint_load_path": str(actor_dir), "actor.create_tiny_checkpoint": False}
        return {"actor.model.lora_path": str(actor_dir)}

    def checkpoint_present(self, path: Path) -> bool:
        return (path / "config.json").exists()

    def check_paths(self, cfg: Mapping[str, Any], pending: str | None) -> None:
        """The model directories exist, are complete and their safetensors headers open; every adapter fits."""
        from vlacrl.models.openvla_oft.checkpoint import read_weight_shapes, validate_model_dir

        shapes: dict[str, dict[str, tuple[int, ...]]] = {}  # model dir → its stored tensor shapes
        for key in ("actor.checkpoint_load_path", "rollout.model_dir"):
            path = str(config_value(cfg, key))
            if path == pending:
                continue
            try:
                shapes[path] = shapes.get(path) or read_weight_shapes(validate_model_dir(path))
            except ModelDirError as exc:
                raise ModelPathError(key, str(exc)) from None
        if not pending:
            check_adapters(cfg, shapes[str(config_value(cfg, "actor.checkpoint_load_path"))])

    def write_tiny(self, cfg: Mapping[str, Any], path: Path) -> None:
        from vlacrl.models.openvla_oft.tiny import write_tiny_checkpoint

        logger.info("creating the tiny %s checkpoint in %s (first run)", self.label, path)
        write_tiny_checkpoint(path)

    def write_sft_base(self, cfg: Mapping[str, Any], path: Path, sft: Mapping[str, Any], demos: Sequence[Path]):
        """Tiny base (``sft.base_model``, written when missing) → supervised fine-tuning on ``demos`` → ``path``."""
        from vlacrl.training.oft_sft import SFTConfig, supervised_finetune

        base = Path(str(sft["base_model"]))
        if not self.checkpoint_present(base):
            self.write_tiny(cfg, base)
        config = SFTConfig(
            steps=int(sft["steps"]), batch_size=int(sft["batch_size"]), lr=float(sft["lr"]),
            seed=int(sft.get("seed", 0)), unnorm_key=str(config_value(cfg, "actor.model.unnorm_key")),
            demos_per_task=int(sft["demos_per_task"]),
            max_prompt_length=int(config_value(cfg, "runner.max_prompt_length")), family=self.name,
        )  # fmt: skip
        logger.info("creating the SFT base %s: %d steps on %d demo files (first run, about a minute)", path,
                    config.steps, len(demos))  # fmt: skip
        record = supervised_finetune(base, list(demos), path, config)
        logger.info("SFT base ready: token accuracy %.2f, %.0f s", record["last"]["token_accuracy"], record["seconds"])


def check_adapters(cfg: Mapping[str, Any], model_shapes: dict[str, tuple[int, ...]]) -> None:
    """``actor.model.lora_path`` and each of ``actor.model.lora_paths`` is a readable adapter that fits the model;
    an adapter that training continues (``lora_path``, not ``runner.only_eval``) has rank ``actor.model.lora_rank``
    (peft would silently train it at its own rank)."""
    adapters = [("actor.model.lora_path", config_value(cfg, "actor.model.lora_path"))]
    adapters += [("actor.model.lora_paths", p) for p in (config_value(cfg, "actor.model.lora_paths") or [])]
    only_eval = bool(config_value(cfg, "runner.only_eval", False))
    lora_rank = None if only_eval else config_value(cfg, "actor.model.lora_rank")
    for key, path in adapters:
        if path is None:
            continue
        try:
            rank = check_adapter_fits(check_adapter_dir(str(path)), model_shapes)
        except LoraError as exc:
            raise ModelPathError(key, str(exc)) from None
        if key == "actor.model.lora_path" and lora_rank is not None and rank != int(lora_rank):
            raise ModelPathError(
                key,
                f"{path} has rank r={rank} but actor.model.lora_rank is {lora_rank}; "
                f"set actor.model.lora_rank={rank} or pass an adapter of rank {lora_rank}",
            )
