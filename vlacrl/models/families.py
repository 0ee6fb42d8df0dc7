"""Policy families: the one place that knows what differs between kinds of policy (docs/models.md).

``actor.model.model_name`` names a family. Everything family-specific sits behind :class:`PolicyFamily`: how the
model is built and fed, how a checkpoint is saved, resumed, chained to the next stage and evaluated, which paths
must exist before Ray starts, how a tiny checkpoint is written for CPU runs, and the action vocabulary that
replay losses score. Config validation, the session, the workers and every CRL method ask the family; none of
them spells a family name. A new family is one module with a :class:`PolicyFamily` subclass plus one line in
:data:`FAMILIES`.

Config arguments are the resolved run config, as a ``DictConfig`` or a plain nested dict.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from vlacrl.models.errors import ModelPathError

#: name → ``module:class`` of its :class:`PolicyFamily`; a new family is one module plus one line here.
FAMILIES: dict[str, str] = {
    "openvla_oft": "vlacrl.models.openvla_oft.family:OpenVLAOFTFamily",
    "openvla": "vlacrl.models.openvla.family:OpenVLAFamily",
    "simple_cnn": "vlacrl.models.simple_cnn_family:SimpleCNNFamily",
}
DEFAULT_FAMILY = "openvla_oft"


@dataclass(frozen=True)
class ActionVocabulary:
    """The token ids a family's actions are written in: ``[token_begin, token_end)`` (one id per bin).

    OpenVLA-OFT: ids 31744–31999 of the Llama-2 vocabulary (256 bins, the highest id is bin 0).
    """

    token_begin: int
    token_end: int

    @property
    def num_bins(self) -> int:
        return self.token_end - self.token_begin


class PolicyFamily:
    """How one kind of policy is built, fed, saved, resumed, chained, checked and made tiny.

    Subclasses set the class attributes and implement the methods that raise ``NotImplementedError``.
    """

    name: str = ""
    #: checkpoints hold only the trainable tensors (a LoRA adapter) rather than the whole model
    trainable_only_state: bool = False
    #: LoRA adapters can be trained on it (``actor.model.is_lora``)
    supports_lora: bool = False
    #: its checkpoints are HF-format OpenVLA model directories (``vlacrl-make-tiny-checkpoint``,
    #: ``vlacrl-inspect-model``); then :meth:`policy_class` and :attr:`action_chunks` describe the policy
    hf_model_dir: bool = False
    #: actions per model call when a config does not say (``actor.model.num_action_chunks``)
    action_chunks: int = 8
    #: human-readable name in messages
    label: str = ""

    # ------------------------------------------------------------------------------------------ worker side
    def build(self, cfg: Mapping[str, Any], path: str, use_gpu: bool) -> torch.nn.Module:
        """The model at ``path`` on the worker's device and dtype, set up for training as configured."""
        raise NotImplementedError

    def processor(self, cfg: Mapping[str, Any], path: str, model: torch.nn.Module | None = None):
        """The batch builder (instructions + images → model inputs) of the model at ``path``; ``model`` is the
        already built one when there is one (avoids a reload)."""
        raise NotImplementedError

    def save(self, model: torch.nn.Module, full_state: dict[str, torch.Tensor], actor_dir: Path) -> None:
        """Write ``<checkpoint>/actor`` from rank 0's gathered state."""
        raise NotImplementedError

    def resume_cfg(self, cfg: Mapping[str, Any], actor_dir: Path) -> dict[str, Any]:
        """The config whose :meth:`build` loads the checkpoint in ``actor_dir`` (resuming a run)."""
        raise NotImplementedError

    def policy_class(self) -> type:
        """The ``nn.Module`` class the family's checkpoints load into (HF-format families)."""
        raise NotImplementedError

    def load_extra_state(self, model: torch.nn.Module, actor_dir: Path) -> None:
        """Load what :meth:`build` does not (e.g. a value head) from ``actor_dir`` when resuming."""

    def action_vocabulary(self, model: torch.nn.Module) -> ActionVocabulary:
        """The action token ids of a built ``model`` (replay losses, critics that read actions as tokens)."""
        raise ValueError(f"the {self.name} policy does not write actions as tokens of a language vocabulary")

    # ------------------------------------------------------------------------------------------ driver side
    def trains_all_weights(self, cfg: Mapping[str, Any]) -> bool:
        """Every weight trains (no LoRA adapter): methods whose state is LoRA tensors cannot run."""
        return True

    def start_from(self, cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
        """Overrides (dotted keys) that start a training run from a stage's saved ``actor/`` dir."""
        raise NotImplementedError

    def eval_from(self, cfg: Mapping[str, Any], actor_dir: str) -> dict[str, Any]:
        """Overrides that evaluate a stage's saved ``actor/`` dir (default: as :meth:`start_from`)."""
        return self.start_from(cfg, actor_dir)

    def checkpoint_present(self, path: Path) -> bool:
        """Whether ``actor.checkpoint_load_path`` already holds a checkpoint of this family."""
        raise NotImplementedError

    def check_paths(self, cfg: Mapping[str, Any], pending: str | None) -> None:
        """Before Ray starts: every model path the run loads exists, is complete and fits; ``pending`` is the
        checkpoint path the run will write itself (skipped). Raises :class:`ModelPathError` naming the key."""
        raise NotImplementedError

    def write_tiny(self, cfg: Mapping[str, Any], path: Path) -> None:
        """A tiny random checkpoint of the real architecture at ``path`` (CPU runs and tests)."""
        raise NotImplementedError

    def write_sft_base(self, cfg: Mapping[str, Any], path: Path, sft: Mapping[str, Any], demos: Sequence[Path]):
        """The CPU *SFT base*: this family's supervised recipe (``actor.tiny_sft``) on the expert ``demos``,
        written to ``path``."""
        raise NotImplementedError


def model_section(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """``actor.model`` of a config ({} when absent)."""
    return ((cfg.get("actor") or {}).get("model")) or {}


def family_name(cfg: Mapping[str, Any]) -> str:
    """``actor.model.model_name`` (default ``openvla_oft``), checked against :data:`FAMILIES`."""
    name = str(model_section(cfg).get("model_name") or DEFAULT_FAMILY)
    if name not in FAMILIES:
        raise ModelPathError("actor.model.model_name", f"unknown {name!r}; choose one of {sorted(FAMILIES)}")
    return name


@functools.lru_cache(maxsize=None)
def get_family(name: str) -> PolicyFamily:
    """The family registered as ``name`` (imported on first use)."""
    if name not in FAMILIES:
        raise ModelPathError("actor.model.model_name", f"unknown {name!r}; choose one of {sorted(FAMILIES)}")
    module_name, class_name = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def family_of(cfg: Mapping[str, Any]) -> PolicyFamily:
    """The :class:`PolicyFamily` a config's ``actor.model.model_name`` names."""
    return get_family(family_name(cfg))


def hf_family_names() -> list[str]:
    """The families whose checkpoints are HF-format model directories (the default first)."""
    names = [name for name in FAMILIES if get_family(name).hf_model_dir]
    return sorted(names, key=lambda name: name != DEFAULT_FAMILY)


def worker_device(use_gpu: bool) -> torch.device:
    return torch.device("cuda", 0) if use_gpu else torch.device("cpu")


def model_dtype(model_cfg: Mapping[str, Any], use_gpu: bool) -> torch.dtype:
    """bf16 on GPU as the reference; float32 on CPU (bf16 matmuls are slow and imprecise there)."""
    return torch.bfloat16 if use_gpu and model_cfg.get("precision", "bf16") == "bf16" else torch.float32


def config_value(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``cfg[a][b][c]`` for ``dotted = "a.b.c"`` (``default`` when a level is missing or the value is None)."""
    node: Any = cfg
    for part in dotted.split("."):
        if not hasattr(node, "get"):
            return default
        node = node.get(part)
        if node is None:
            return default
    return node
