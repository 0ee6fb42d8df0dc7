"""Check a composed config before Ray starts; every problem is one readable line.

``validate_config(cfg, num_gpus)`` runs each check of :data:`CHECKS` in order and raises
:class:`ConfigError` at the first failure. It also returns the resolved placement (world sizes),
which the launcher reuses. Checked: GPU placement, suites and task ids, batch sizes that divide, the model
directories (files present, safetensors headers readable), adapters (readable, fitting the model, rank
``actor.model.lora_rank``), the CRL method (registered, its ``crl.*`` keys, ``crl.tasks``, the files it reads:
Fisher file, replay/demo data), the logger and resume keys, and that each split's simulator can run here (LIBERO:
MuJoCo renders, checked in a subprocess).
See docs/reliability.md ("Bad input").
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from vlacrl.config.errors import ConfigError
from vlacrl.config.family import policy_family
from vlacrl.config.key_types import COUNT, check_key_types
from vlacrl.config.reference_flags import check_reference_flags
from vlacrl.config.tasks import parse_task_range
from vlacrl.config.tiny_checkpoint import missing_checkpoint_hint, tiny_checkpoint_pending
from vlacrl.distributed.placement import COMPONENTS, ComponentPlacement, PlacementError, resolve_placement
from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.registry import get_simulator, simulator_name
from vlacrl.paths import output_dir_problem


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


def _require_int(cfg: DictConfig, key: str) -> int:
    """``key``'s value, a positive integer (the rule and message of ``key_types.COUNT``)."""
    value = _get(cfg, key)
    if not COUNT.accepts(value):
        raise ConfigError(f"{key} must be {COUNT.describe()}, got {value!r}")
    return value


def split_simulator(cfg: DictConfig, split: str):
    """The simulator of ``env.<split>`` (``simulator_type``); an unknown name is a :class:`ConfigError`."""
    try:
        return get_simulator(simulator_name({"simulator_type": _get(cfg, f"env.{split}.simulator_type")}))
    except EnvConfigError as exc:
        raise ConfigError(f"env.{split}.simulator_type: {exc}") from None


def check_env(cfg: DictConfig, placement) -> None:
    for split in ("train", "eval"):
        simulator = split_simulator(cfg, split)
        suite = _get(cfg, f"env.{split}.task_suite_name")
        try:
            simulator.validate_suite(str(suite))
            task_ids = _get(cfg, f"env.{split}.fixed_task_ids")
            if task_ids is not None:
                simulator.validate_task_ids(suite, list(task_ids))
            simulator.sim_config(OmegaConf.to_container(cfg.env[split], resolve=True))  # images, perturbations
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
    if groups % actor_ws:
        raise ConfigError(
            f"algorithm.num_group_envs ({groups}) must be divisible by the actor world size ({actor_ws}): each "
            "actor rank trains on whole GRPO groups"
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
    """The model paths the run loads exist, are complete and fit (each family checks its own:
    :meth:`vlacrl.models.families.PolicyFamily.check_paths`)."""
    from vlacrl.models.errors import ModelPathError

    try:
        policy_family(cfg).check_paths(cfg, _pending_checkpoint(cfg))
    except ModelPathError as exc:
        raise ConfigError(f"{exc}{missing_checkpoint_hint(cfg)}") from None


def _pending_checkpoint(cfg: DictConfig) -> str | None:
    """``actor.checkpoint_load_path`` when the run will make it after validation (checked then), else None."""
    return str(_get(cfg, "actor.checkpoint_load_path")) if tiny_checkpoint_pending(cfg) else None


def check_runner(cfg: DictConfig, placement) -> None:
    if not _get(cfg, "runner.only_eval", False):
        _require_int(cfg, "runner.max_epochs")
        if _get(cfg, "rollout.random_action", False):
            raise ConfigError(
                "rollout.random_action=True is an evaluation baseline (no model acts): run it with "
                "vlacrl-eval or eval_embodiment.sh, not a training command"
            )
    _require_int(cfg, "algorithm.eval_rollout_epoch")
    backends = list(_get(cfg, "runner.logger.logger_backends", []) or [])
    unknown = [b for b in backends if b not in ("console", "tensorboard", "wandb")]
    if unknown:
        raise ConfigError(f"runner.logger.logger_backends: unknown {unknown}; use console, tensorboard, wandb")
    mode = _get(cfg, "runner.logger.wandb.mode", "disabled")
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"runner.logger.wandb.mode must be online, offline or disabled, not {mode!r}")
    problem = output_dir_problem(str(_get(cfg, "runner.logger.log_path", ".")))
    if problem:
        raise ConfigError(f"runner.logger.log_path: {problem}")
    resume = str(_get(cfg, "runner.resume", "auto"))
    if resume not in ("auto", "disable") and not os.path.isdir(resume):
        raise ConfigError(f"runner.resume must be auto, disable or an existing checkpoint dir; {resume} does not exist")


def check_method(cfg: DictConfig, placement=None) -> None:
    """:func:`check_method_config`, then the files the method reads when the actor starts
    (:func:`check_method_inputs`)."""
    method = check_method_config(cfg)
    if method is not None:
        check_method_inputs(method, cfg)


def check_method_config(cfg: DictConfig, placement=None):
    """The CRL method is registered and accepts its ``crl.*`` keys, ``crl.tasks`` / ``crl.eval_tasks`` parse and
    exist in the suite, and the policy family can run it (a LoRA-only method needs LoRA). Returns the method.

    Builds only the method object (no model). Skipped without a ``crl`` section and for evaluation runs
    (``runner.only_eval``), which build no actor. Also called by ``vlacrl-crl`` before anything is written.
    """
    if not _get(cfg, "crl") or _get(cfg, "runner.only_eval", False):
        return None
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from vlacrl.crl.registry import UnknownMethodError, build_method

    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"the config does not resolve: {' '.join(str(exc).split())}") from None
    name = resolved["crl"].get("method", "seq_ft")
    try:
        method = build_method(resolved)
    except UnknownMethodError as exc:
        raise ConfigError(str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"crl.method={name}: {exc}") from None
    tasks = task_ids(cfg, "crl.tasks", "train", default=0)
    if _get(cfg, "crl.eval_tasks") is not None:
        task_ids(cfg, "crl.eval_tasks", "eval")
    try:
        method.task_schedule(tasks)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"crl.method={name}: {exc}") from None
    family = policy_family(resolved)
    if family.trains_all_weights(resolved) and not method.supports_full_finetuning:
        why = "actor.model.is_lora=False" if family.supports_lora else f"actor.model.model_name={family.name}"
        raise ConfigError(f"{why}: crl={name} trains LoRA adapters; a model whose every weight trains runs with "
                          f"crl=seq_ft, seq_ft_reorder or multitask (docs/training.md)")  # fmt: skip
    return method


def task_ids(cfg: DictConfig, key: str, split: str, default=None) -> list[int]:
    """The task ids of ``key`` (k, ``'a,b'`` = the range a..b, or a list), each checked against the suite of
    ``env.<split>``."""
    value = _get(cfg, key, default)
    try:
        ids = parse_task_range(value if value is not None else default)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("crl.tasks", key, 1)) from None
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: cannot parse {value!r}; use k, 'a,b' (the range a..b) or a list") from None
    try:
        return split_simulator(cfg, split).validate_task_ids(str(_get(cfg, f"env.{split}.task_suite_name")), ids)
    except EnvConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def check_method_inputs(method, cfg: DictConfig) -> None:
    """Files a method reads when the actor starts: EWC's ``crl.previous_fisher_path``, the previous stage's state
    dirs (``crl.previous_state_dir``, ``crl.previous_d_rl_dir``), ER/DER's replay files (``crl.dataset_dir``;
    DER with cached logits: the logits in them), iRe-VLA's demo files; then the method's own ``check_inputs()``
    when it has one (a method may add one: no arguments, raises ``ValueError`` with a one-line message)."""
    name, params = method.name, method.params
    fisher = params.get("previous_fisher_path")
    if fisher and not _is_torch_file(Path(str(fisher))):
        raise ConfigError(
            f"crl.previous_fisher_path: {fisher} is missing or not a torch.save file (the ewc_data.pt the "
            "previous stage wrote); point it at that file, or set it to null to train without the EWC penalty"
        )
    for key in ("previous_state_dir", "previous_d_rl_dir"):
        value = params.get(key)
        if value and not Path(str(value)).is_dir():
            raise ConfigError(f"crl.{key}: {value} is not a directory (the previous stage's finish_task writes it)")
    try:
        method.check_inputs()  # ER / DER: the replay files of this stage; iRe-VLA: its demos
    except (ValueError, OSError) as exc:
        raise ConfigError(f"crl.method={name}: {' '.join(str(exc).split())}") from None


def _is_torch_file(path: Path) -> bool:
    """A ``torch.save`` file: a complete zip archive (the default format) or a legacy pickle."""
    if not path.is_file():
        return False
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(2) == b"\x80\x02"


def check_simulators(cfg: DictConfig, placement) -> None:
    """Each simulator the run uses can run here (:meth:`Simulator.check_runtime`; LIBERO probes its render
    backend in a subprocess, once even when both splits use it)."""
    checked = set()
    for split in ("train", "eval"):
        simulator = split_simulator(cfg, split)
        if simulator.name in checked:
            continue
        checked.add(simulator.name)
        try:
            joining = bool(_get(cfg, "cluster.address"))
            simulator.check_runtime(uses_gpu=placement["env"].uses_gpu, joining_cluster=joining)
        except EnvConfigError as exc:
            raise ConfigError(str(exc)) from None


#: Run in this order after check_env and check_sizes: the method's keys before any model file is opened, its own
#: files after; the simulator checks (LIBERO: a subprocess) last.
def check_node_resources(cfg: DictConfig) -> None:
    """``cluster.node_resources`` maps known components to resource names (whether a node offers them is checked
    once Ray runs: ``vlacrl.distributed.cluster.check_node_resources``)."""
    pinned = _get(cfg, "cluster.node_resources") or {}
    if not isinstance(pinned, (dict, DictConfig)):
        raise ConfigError(f"cluster.node_resources must be a mapping component -> Ray resource name, got {pinned!r}")
    for component, resource in pinned.items():
        if component not in COMPONENTS:
            raise ConfigError(f"cluster.node_resources: unknown component {component!r}; components: {COMPONENTS}")
        if not isinstance(resource, str) or not resource:
            raise ConfigError(f"cluster.node_resources.{component} must be a Ray resource name, got {resource!r}")


CHECKS: tuple[Callable, ...] = (check_method_config, check_paths, check_method, check_runner, check_simulators)


def validate_config(cfg: DictConfig, num_gpus: int) -> ValidatedSizes:
    """Run every check; raise :class:`ConfigError` with one line at the first problem."""
    check_key_types(cfg)
    check_reference_flags(cfg)
    try:
        placement = resolve_placement(
            _get(cfg, "cluster.component_placement"), num_gpus, int(_get(cfg, "cluster.cpu_world_size", 1))
        )
    except PlacementError as exc:
        raise ConfigError(f"cluster.component_placement: {exc}") from None
    check_node_resources(cfg)
    check_env(cfg, placement)
    sizes = check_sizes(cfg, placement)
    for check in CHECKS:
        check(cfg, placement)
    return sizes
