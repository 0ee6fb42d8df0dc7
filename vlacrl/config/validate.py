"""Check a composed config before Ray starts; every problem is one readable line.

``validate_config(cfg, num_gpus)`` runs each check of :data:`CHECKS` in order and raises
:class:`ConfigError` at the first failure. It also returns the resolved placement (world sizes),
which the launcher reuses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from omegaconf import DictConfig

from vlacrl.distributed.placement import ComponentPlacement, PlacementError, resolve_placement
from vlacrl.envs.libero import suites
from vlacrl.envs.libero.errors import EnvConfigError


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


@dataclass(frozen=True)
class ValidatedSizes:
    """Sizes derived from a valid config."""

    placement: dict[str, ComponentPlacement]
    env_world_size: int
    actor_world_size: int
    train_envs_per_worker: int  # num_envs of each training env worker
    samples_per_step: int  # chunk samples per global step over all workers
    minibatches_per_step: int
    microbatches_per_minibatch: int  # per actor rank (= gradient accumulation steps)


def _get(cfg: DictConfig, key: str, default=None):
    node = cfg
    for part in key.split("."):
        if node is None or part not in node:
            return default
        node = node[part]
    return node


def _require_int(cfg: DictConfig, key: str, minimum: int = 1) -> int:
    value = _get(cfg, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def check_env(cfg: DictConfig, placement) -> None:
    for split in ("train", "eval"):
        suite = _get(cfg, f"env.{split}.task_suite_name")
        try:
            suites.validate_suite(str(suite))
            task_ids = _get(cfg, f"env.{split}.fixed_task_ids")
            if task_ids is not None:
                suites.validate_task_ids(suite, list(task_ids))
        except EnvConfigError as exc:
            raise ConfigError(f"env.{split}: {exc}") from None
        steps = _require_int(cfg, f"env.{split}.max_episode_steps")
        chunk = _require_int(cfg, "actor.model.num_action_chunks")
        if steps % chunk:
            raise ConfigError(
                f"env.{split}.max_episode_steps ({steps}) must be a multiple of the chunk length ({chunk})"
            )


def check_sizes(cfg: DictConfig, placement) -> ValidatedSizes:
    env_ws, actor_ws = placement["env"].world_size, placement["actor"].world_size
    groups = _require_int(cfg, "algorithm.num_group_envs")
    group_size = _require_int(cfg, "algorithm.group_size")
    if groups % env_ws:
        raise ConfigError(f"algorithm.num_group_envs ({groups}) must be divisible by the env world size ({env_ws})")
    stages = int(_get(cfg, "rollout.pipeline_stage_num", 1) or 1)
    if stages < 1 or groups % (env_ws * stages):
        raise ConfigError(
            f"rollout.pipeline_stage_num ({stages}) must split each env worker's {groups // env_ws} GRPO group(s) "
            "evenly (a group never spans two stages)"
        )
    eval_envs = _require_int(cfg, "env.eval.num_envs")
    if eval_envs % env_ws:
        raise ConfigError(f"env.eval.num_envs ({eval_envs}) must be divisible by the env world size ({env_ws})")
    samples = _require_int(cfg, "algorithm.rollout_epoch") * _require_int(cfg, "algorithm.n_chunk_steps")
    samples *= groups * group_size
    global_batch = _require_int(cfg, "actor.global_batch_size")
    micro = _require_int(cfg, "actor.micro_batch_size")
    if global_batch % (micro * actor_ws):
        raise ConfigError(
            f"actor.global_batch_size ({global_batch}) must be divisible by actor.micro_batch_size ({micro}) "
            f"x the actor world size ({actor_ws})"
        )
    if samples % global_batch:
        raise ConfigError(
            f"one global step collects {samples} chunk samples (rollout_epoch x n_chunk_steps x num_envs), "
            f"which actor.global_batch_size ({global_batch}) must divide"
        )
    return ValidatedSizes(
        placement=placement,
        env_world_size=env_ws,
        actor_world_size=actor_ws,
        train_envs_per_worker=groups // env_ws * group_size,
        samples_per_step=samples,
        minibatches_per_step=samples // global_batch,
        microbatches_per_minibatch=global_batch // (micro * actor_ws),
    )


def check_paths(cfg: DictConfig, placement) -> None:
    from vlacrl.models.errors import LoraError, ModelDirError  # noqa: PLC0415
    from vlacrl.models.lora import check_adapter_dir  # noqa: PLC0415
    from vlacrl.models.openvla_oft.checkpoint import validate_model_dir  # noqa: PLC0415

    name = str(_get(cfg, "actor.model.model_name", "openvla_oft"))
    if name not in ("openvla_oft", "simple_cnn"):
        raise ConfigError(f"actor.model.model_name: unknown {name!r}; use openvla_oft or simple_cnn")
    if name == "simple_cnn":
        check_cnn_paths(cfg)
        return
    for key in ("rollout.model_dir", "actor.checkpoint_load_path"):
        try:
            validate_model_dir(str(_get(cfg, key)))
        except ModelDirError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    adapters = [("actor.model.lora_path", _get(cfg, "actor.model.lora_path"))]
    adapters += [("actor.model.lora_paths", p) for p in (_get(cfg, "actor.model.lora_paths") or [])]
    for key, path in adapters:
        if path is None:
            continue
        try:
            check_adapter_dir(str(path))
        except LoraError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def check_cnn_paths(cfg: DictConfig) -> None:
    """Simple CNN: the checkpoint files the actor and the rollout load exist and carry their metadata."""
    from vlacrl.models.errors import CNNCheckpointError  # noqa: PLC0415
    from vlacrl.models.simple_cnn_rl import load_rl_policy  # noqa: PLC0415

    if _get(cfg, "actor.model.is_lora", False):
        raise ConfigError("actor.model.is_lora: the Simple CNN trains all its weights; set it to False")
    keys = ["rollout.checkpoint_path"] if _get(cfg, "rollout.checkpoint_path") else ["rollout.model_dir"]
    for key in dict.fromkeys(keys + ["actor.checkpoint_load_path"]):
        try:
            load_rl_policy(str(_get(cfg, key)), _get(cfg, "actor.model.cnn_metadata_path"))
        except CNNCheckpointError as exc:
            raise ConfigError(f"{key}: {exc}") from None


def check_runner(cfg: DictConfig, placement) -> None:
    backends = list(_get(cfg, "runner.logger.logger_backends", []) or [])
    unknown = [b for b in backends if b not in ("console", "tensorboard", "wandb")]
    if unknown:
        raise ConfigError(f"runner.logger.logger_backends: unknown {unknown}; use console, tensorboard, wandb")
    mode = _get(cfg, "runner.logger.wandb.mode", "disabled")
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"runner.logger.wandb.mode must be online, offline or disabled, not {mode!r}")
    resume = str(_get(cfg, "runner.resume", "auto"))
    if resume not in ("auto", "disable") and not os.path.isdir(resume):
        raise ConfigError(f"runner.resume must be auto, disable or an existing checkpoint dir; {resume} does not exist")


CHECKS: tuple[Callable, ...] = (check_paths, check_runner)  # after check_env and check_sizes


def validate_config(cfg: DictConfig, num_gpus: int) -> ValidatedSizes:
    """Run every check; raise :class:`ConfigError` with one line at the first problem."""
    try:
        placement = resolve_placement(
            _get(cfg, "cluster.component_placement"), num_gpus, int(_get(cfg, "cluster.cpu_world_size", 1))
        )
    except PlacementError as exc:
        raise ConfigError(f"cluster.component_placement: {exc}") from None
    check_env(cfg, placement)
    sizes = check_sizes(cfg, placement)
    for check in CHECKS:
        check(cfg, placement)
    return sizes
