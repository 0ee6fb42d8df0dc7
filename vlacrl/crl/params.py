"""The ``crl.*`` keys each method accepts, with their types: one dataclass per method.

The defaults live in ``configs/crl/<method>.yaml`` (one source); these dataclasses are the schema that
:func:`check_method_keys` holds a run's ``crl`` section to, before Ray starts: a key a method does not read
(``crl.ewc_lamda``) and a value of the wrong type (``crl.bc_coeff=abc``) are one line naming ``crl=<method>``.
``tests/crl/test_params.py`` checks that every method's dataclass and YAML name the same keys.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from vlacrl.crl.common import MethodConfigError

TaskList = Any  # k, 'a,b' (the range a..b) or a list of ids: parsed by vlacrl.config.tasks


@dataclass(frozen=True)
class SequenceParams:
    """The continual sequence's keys, read by the runner for every method (configs/cpu_tiny.yaml, ``crl:``)."""

    method: str
    tasks: TaskList
    eval_tasks: TaskList
    eval_base: bool
    stage_dir: str
    seed: int
    eval_overrides: Optional[dict]
    dry_run: bool
    first_task: Optional[int]  # null: a sequence may start at any task from the base model


@dataclass(frozen=True)
class MultitaskParams(SequenceParams):
    eval_lora_scale: Optional[float]


@dataclass(frozen=True)
class SeqFTParams(MultitaskParams):
    order: Optional[list]


@dataclass(frozen=True)
class EWCParams(SeqFTParams):
    ewc_lambda: float
    fisher_max: float
    fisher_grad_norm_max: float
    previous_fisher_path: Optional[str]


@dataclass(frozen=True)
class ERParams(SeqFTParams):
    bc_coeff: float
    demos_per_task: Optional[int]
    dataset_dir: Optional[str]
    replay_tasks: str
    seen_task_ids: Optional[list]
    replay_batch_size: Optional[int]  # null: actor.micro_batch_size
    replay_seed: Optional[int]
    replay_reshuffle: bool
    replay_num_workers: Optional[int]


@dataclass(frozen=True)
class DERParams(ERParams):
    use_cached_logits: bool
    logits_type: str


@dataclass(frozen=True)
class WeightMergeParams(MultitaskParams):
    merge_coefficient: float


@dataclass(frozen=True)
class SLCAParams(SeqFTParams):
    vision_lora_lr: Optional[float]
    llm_lora_lr: Optional[float]
    lm_head_lora_lr: Optional[float]


@dataclass(frozen=True)
class CRLVLAParams(SeqFTParams):
    critic: str
    alpha: float
    beta_v: float
    beta_q: float
    eta: float
    critic_hidden: int
    mc_backbone_grad: Optional[bool]
    critic_lr: Optional[float]
    gamma: Optional[float]
    kl_temperature: Optional[float]
    target_kl: Optional[float]  # null: no KL early stop
    old_terms_need_rl: bool
    reset_mc_critic: bool
    b_old_per_task: int
    b_old_capacity: Optional[int]  # null: unbounded
    b_old_batch_size: Optional[int]
    sample_seed: Optional[int]
    previous_state_dir: Optional[str]


@dataclass(frozen=True)
class IReVLAParams(SeqFTParams):
    stage1_trainable: Optional[list]  # null: the default patterns
    stage1_steps: Optional[int]
    stage2_steps: int
    stage2_batch_size: Optional[int]
    stage2_lr: Optional[float]
    stage2_temperature: Optional[float]
    stage2_trainable: Optional[list]
    stage2_in_finish_task: bool
    demo_fraction: float
    d_rl_max_samples: Optional[int]  # null: unbounded
    dataset_dir: Optional[str]
    demos_per_task: Optional[int]
    demo_tasks: str
    seen_task_ids: Optional[list]
    sample_seed: Optional[int]
    previous_d_rl_dir: Optional[str]


#: method name → its parameter dataclass
METHOD_PARAMS: dict[str, type[SequenceParams]] = {
    "seq_ft": SeqFTParams,
    "seq_ft_reorder": SeqFTParams,
    "multitask": MultitaskParams,
    "ewc": EWCParams,
    "er": ERParams,
    "der": DERParams,
    "weight_merge": WeightMergeParams,
    "slca": SLCAParams,
    "crl_vla": CRLVLAParams,
    "ire_vla": IReVLAParams,
}

_CHECKS = {
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    bool: lambda v: isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    list: lambda v: isinstance(v, (list, tuple)),
    dict: lambda v: isinstance(v, Mapping),
}
_NAMES = {
    float: "a number",
    int: "an integer",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def key_types(params: type[SequenceParams]) -> dict[str, Any]:
    """Field name → its type (``Optional[X]`` as given)."""
    return typing.get_type_hints(params)


def _accepts(kind: Any, value: Any) -> tuple[bool, str]:
    """(does ``value`` fit ``kind``, what ``kind`` is in words)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Union and type(None) in args:  # Optional[X]
        inner = next(a for a in args if a is not type(None))
        ok, words = _accepts(inner, value)
        return value is None or ok, f"{words} or null"
    if kind in _CHECKS:
        return _CHECKS[kind](value), _NAMES[kind]
    return True, "any value"


def check_method_keys(name: str, crl: Mapping[str, Any]) -> None:
    """Every key of the ``crl`` section is one ``crl=<name>`` reads, and holds a value of its type."""
    params = METHOD_PARAMS.get(name)
    if params is None:
        return  # a method registered outside vlacrl declares no schema: nothing to hold it to
    types = key_types(params)
    unknown = sorted(set(crl) - set(types))
    if unknown:
        hints = [difflib.get_close_matches(k, list(types), n=1) for k in unknown]
        guess = "; ".join(f"did you mean crl.{h[0]}?" for h in hints if h)
        raise MethodConfigError(
            f"crl={name} does not read {', '.join('crl.' + k for k in unknown)}"
            f"{' (' + guess + ')' if guess else ''}; it reads crl.{{{', '.join(sorted(types))}}}"
        )
    for key, kind in types.items():
        if key in crl:
            ok, words = _accepts(kind, crl[key])
            if not ok:
                raise MethodConfigError(f"crl.{key} must be {words}, got {crl[key]!r}")
