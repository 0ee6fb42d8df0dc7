"""The reference's per-method switches, which vlacrl does not read: set, they are an error naming ``crl=<method>``.

The reference turns a method on with flags under ``algorithm`` / ``actor.optim`` (``+algorithm.use_ewc=True``,
``algorithm.use_experience_replay=True``, …); vlacrl chooses the method with ``crl=<method>`` and reads its
keys under ``crl``. A reference flag given to vlacrl would otherwise be accepted and do nothing.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from vlacrl.config.errors import ConfigError

#: reference key → (the method it belongs to, what vlacrl reads instead)
REFERENCE_FLAGS: dict[str, tuple[str, str]] = {
    "algorithm.use_ewc": ("ewc", "crl=ewc"),
    "algorithm.previous_task_ewc_path": ("ewc", "crl.previous_fisher_path (the continual runner sets it)"),
    "algorithm.ewc_lambda": ("ewc", "crl.ewc_lambda"),
    "algorithm.use_experience_replay": ("er", "crl=er"),
    "algorithm.bc_coeff": ("er", "crl.bc_coeff (crl=er or crl=der)"),
    "algorithm.use_reference_logits_bc": ("der", "crl=der"),
    "algorithm.use_cached_bc_logits": ("der", "crl.use_cached_logits"),
    "algorithm.logits_type": ("der", "crl.logits_type"),
    "actor.optim.vision_lora_lr": ("slca", "crl.vision_lora_lr"),
    "actor.optim.llm_lora_lr": ("slca", "crl.llm_lora_lr"),
    "actor.optim.llm_head_lora_lr": ("slca", "crl.lm_head_lora_lr"),
    "actor.optim.lm_head_lora_lr": ("slca", "crl.lm_head_lora_lr"),
}


def _is_set(value: Any) -> bool:
    return value not in (None, False, 0, 0.0, "")


def check_reference_flags(cfg: DictConfig) -> None:
    """A reference switch that is set is a :class:`ConfigError` (SLCA still reads its ``actor.optim`` rates)."""
    method = str((cfg.get("crl") or {}).get("method", ""))
    for key, (owner, instead) in REFERENCE_FLAGS.items():
        section, *rest = key.split(".")
        node: Any = cfg.get(section)
        for part in rest:
            node = node.get(part) if isinstance(node, DictConfig) else None
        if not _is_set(node) or (owner == "slca" and method == "slca"):
            continue
        then = "" if instead == f"crl={owner}" else f" and set {instead}"
        raise ConfigError(
            f"{key}={node!r} is the reference's switch, which vlacrl does not read: choose the method with "
            f"crl={owner}{then}"
        )
