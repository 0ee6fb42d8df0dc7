"""Build the policy a worker runs from the resolved config (shared by rollout and actor workers).

``actor.model.model_name`` picks a :class:`~vlacrl.models.families.PolicyFamily`
(:func:`~vlacrl.models.families.family_of`), which builds the model and its batch builder. The rollout and the
actor build the *same* model (same parameter names and shapes), so the actor's trainable weights load into the
rollout's model key for key.
"""

from __future__ import annotations

from typing import Any, Mapping

from vlacrl.models.families import family_of, worker_device

__all__ = ["build_policy", "build_processor", "rollout_model_path", "worker_device"]


def rollout_model_path(cfg: Mapping[str, Any]) -> str:
    """The rollout's model: ``rollout.checkpoint_path`` when set (CNN evaluation), else ``rollout.model_dir``."""
    return str(cfg["rollout"].get("checkpoint_path") or cfg["rollout"]["model_dir"])


def build_policy(cfg: Mapping[str, Any], model_path: str, use_gpu: bool):
    return family_of(cfg).build(cfg, model_path, use_gpu)


def build_processor(cfg: Mapping[str, Any], model_path: str, model=None):
    """The batch builder of the policy at ``model_path``; pass the already built ``model`` to avoid a reload."""
    return family_of(cfg).processor(cfg, model_path, model)
