"""Which parameters train in iRe-VLA's two stages, chosen by regular expressions on parameter names.

Stage 1 (RL): only parameters that were trainable when the model was built (LoRA + value head) **and** whose
name matches one of ``crl.stage1_trainable`` (``re.search``); default: the ``lm_head`` LoRA and the value head
[INF: OpenVLA-OFT has no separate action head; ``lm_head`` produces the action tokens]. Everything else gets
``requires_grad = False``, so the optimizer never sees it and it stays bit-identical.

Stage 2 (supervised): every originally trainable parameter (``crl.stage2_trainable: null``), or those matching
the given patterns.

The actor calls ``setup_actor`` (Stage-1 selection) before FSDP2 sharding; FSDP2 copies ``requires_grad`` from
the sharded to the unsharded parameter at every all-gather, so Stage 2 can flip it on the sharded model (tested
with 2 gloo ranks in tests/crl/test_ire_vla.py).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from torch import nn

DEFAULT_STAGE1_PATTERNS = (r"lm_head\.lora_", r"value_head\.")


def matches(name: str, patterns: Sequence[str] | None) -> bool:
    """True when any pattern is found in ``name``; ``None`` matches everything."""
    return patterns is None or any(re.search(p, name) for p in patterns)


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that currently require gradients, in ``named_parameters`` order."""
    return [name for name, param in model.named_parameters() if param.requires_grad]


def select(names: Iterable[str], patterns: Sequence[str] | None) -> list[str]:
    """The names matching ``patterns`` (all of them for None)."""
    return [n for n in names if matches(n, patterns)]


def set_trainable(model: nn.Module, universe: Iterable[str], keep: Iterable[str]) -> list[str]:
    """``requires_grad = name in keep`` for every parameter named in ``universe``; returns the trainable names.

    Parameters outside ``universe`` (e.g. the frozen base weights) are not touched.
    """
    universe, keep = set(universe), set(keep)
    params = dict(model.named_parameters())
    unknown = sorted((universe | keep) - set(params))
    if unknown:
        raise KeyError(f"parameters not in the model: {unknown[:5]}")
    for name in universe:
        params[name].requires_grad_(name in keep)
    return [n for n in params if n in universe and n in keep]
