"""The type and range of every scalar key a run reads, checked before anything else (docs/reliability.md).

A value of the wrong type (``actor.optim.lr=abc``) or out of range (``actor.model.lora_rank=0``,
``cluster.cpu_world_size=0``) is one :class:`ConfigError` line naming the key, the value and what would be
valid, instead of a traceback from inside a worker. Keys absent from a config are skipped (each config
composes only the sections it uses); ``None`` is accepted only where the table says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from vlacrl.config.errors import ConfigError

_MISSING = object()


@dataclass(frozen=True)
class Number:
    """An int (``integer=True``) or a real number in [low, high] (``open_low`` / ``open_high`` exclude the end)."""

    integer: bool = False
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (self.integer and isinstance(value, float))
        ):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.open_high and value == self.high))

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            text = f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.open_low else '>='} {_num(self.low)}"
        else:
            text = kind
        return f"{text} or null" if self.nullable else text


class Flag:
    """A boolean (``true`` / ``false``)."""

    @staticmethod
    def accepts(value: Any) -> bool:
        return isinstance(value, bool)

    @staticmethod
    def describe() -> str:
        return "true or false"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


COUNT = Number(integer=True, low=1)  # a positive integer
NON_NEGATIVE_INT = Number(integer=True, low=0)
INT_OR_OFF = Number(integer=True, low=-1)  # -1 switches the feature off
ANY_INT = Number(integer=True)
POSITIVE = Number(low=0, open_low=True)
NON_NEGATIVE = Number(low=0)
FRACTION = Number(low=0, high=1)
FLAG = Flag()

#: key → its type and range. Keys that only some methods or algorithms read are checked where they are used.
KEY_TYPES: dict[str, Number | Flag] = {
    # sizes
    "cluster.num_nodes": COUNT,
    "cluster.cpu_world_size": COUNT,
    "cluster.placement_timeout_s": POSITIVE,
    "algorithm.group_size": COUNT,
    "algorithm.num_group_envs": COUNT,
    "algorithm.rollout_epoch": COUNT,
    "algorithm.eval_rollout_epoch": COUNT,
    "actor.micro_batch_size": COUNT,
    "actor.global_batch_size": COUNT,
    "actor.model.action_dim": COUNT,
    "actor.model.num_action_chunks": COUNT,
    "actor.model.lora_rank": COUNT,
    "rollout.pipeline_stage_num": COUNT,
    "env.train.max_episode_steps": COUNT,
    "env.eval.max_episode_steps": COUNT,
    "env.train.num_envs": Number(integer=True, low=1, nullable=True),
    "env.eval.num_envs": COUNT,
    "runner.max_prompt_length": COUNT,
    "runner.seq_length": COUNT,
    # schedule
    "runner.max_steps": INT_OR_OFF,
    "runner.save_interval": INT_OR_OFF,
    "runner.val_check_interval": INT_OR_OFF,
    "runner.max_env_worker_restarts": NON_NEGATIVE_INT,
    "actor.seed": ANY_INT,
    # optimiser
    "actor.optim.lr": POSITIVE,
    "actor.optim.value_lr": POSITIVE,
    "actor.optim.adam_beta1": Number(low=0, high=1, open_high=True),
    "actor.optim.adam_beta2": Number(low=0, high=1, open_high=True),
    "actor.optim.adam_eps": POSITIVE,
    "actor.optim.clip_grad": POSITIVE,
    "actor.optim.skip_zero_grad_steps": FLAG,
    # the loss and advantages
    "algorithm.clip_ratio_high": NON_NEGATIVE,
    "algorithm.clip_ratio_low": NON_NEGATIVE,
    "algorithm.clip_ratio_c": Number(low=1, open_low=True),  # the dual-clip bound must exceed 1
    "algorithm.value_clip": NON_NEGATIVE,
    "algorithm.huber_delta": POSITIVE,
    "algorithm.gamma": FRACTION,
    "algorithm.gae_lambda": FRACTION,
    "algorithm.kl_beta": NON_NEGATIVE,
    "algorithm.entropy_bonus": NON_NEGATIVE,
    "algorithm.bc_coeff": NON_NEGATIVE,
    "algorithm.rewards_lower_bound": Number(),
    "algorithm.rewards_upper_bound": Number(),
    "algorithm.normalize_advantages": FLAG,
    "algorithm.filter_rewards": FLAG,
    "algorithm.require_values": FLAG,
    # sampling
    "algorithm.sampling_params.use_greedy": FLAG,
    "algorithm.sampling_params.temperature_train": POSITIVE,
    "algorithm.sampling_params.temperature_eval": POSITIVE,
    "algorithm.sampling_params.top_p": Number(low=0, high=1, open_low=True),
    # switches
    "runner.only_eval": FLAG,
    "actor.model.is_lora": FLAG,
    "rollout.random_action": FLAG,
    "actor.model.cnn_train_dropout": FLAG,
    "actor.model.gradient_checkpointing": FLAG,
    "actor.enable_offload": FLAG,
    "rollout.enable_offload": FLAG,
}


def lookup(cfg: DictConfig, key: str) -> Any:
    """The resolved value of ``key``, or ``_MISSING``; an interpolation that fails is a :class:`ConfigError`."""
    node: Any = cfg
    try:
        for part in key.split("."):
            if not isinstance(node, DictConfig) or part not in node:
                return _MISSING
            node = node[part]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{key}: {' '.join(str(exc).split()[:30])}") from None
    return node


def check_key_types(cfg: DictConfig) -> None:
    """Every key of :data:`KEY_TYPES` that ``cfg`` has holds a value of its type and range."""
    for key, kind in KEY_TYPES.items():
        value = lookup(cfg, key)
        if value is not _MISSING and not kind.accepts(value):
            raise ConfigError(f"{key} must be {kind.describe()}, got {value!r}")
