"""The OpenVLA-OFT checkpoint configuration, read from a HF-format model directory.

``config.json`` of the released checkpoints (model_type ``openvla``) carries the vision backbone ids
(``timm_model_ids``, ``image_sizes``, ``use_fused_vision_backbone``), the LLM (``text_config``: only the
keys that differ from Llama defaults), ``pad_to_multiple_of``, ``n_action_bins`` and ``norm_stats``;
``dataset_statistics.json`` in the same directory is merged into ``norm_stats``. Tiny checkpoints add
one key, ``timm_model_kwargs`` (a list parallel to ``timm_model_ids`` of extra ``timm.create_model``
keyword arguments such as ``depth``/``embed_dim``), so one code path builds both sizes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

from vlacrl.models.errors import ModelDirError

MODEL_TYPE = "openvla"


@dataclass
class OpenVLAOFTConfig:
    """Typed view of ``config.json`` (+ ``dataset_statistics.json``).

    Deliberately not a ``transformers.PretrainedConfig`` and without a ``model_type`` attribute: peft then
    treats the policy as a custom ``nn.Module`` and never tries to resolve it on the Hub.
    """

    text_config: LlamaConfig
    timm_model_ids: list[str]
    image_sizes: list[int]
    use_fused_vision_backbone: bool = True
    timm_override_act_layers: list[str | None] = field(default_factory=lambda: [None, None])
    timm_model_kwargs: list[dict[str, Any]] | None = None
    pad_to_multiple_of: int = 64
    pad_token_id: int = 32000
    n_action_bins: int = 256
    norm_stats: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer_vocab_size(self) -> int:
        """Ids the tokenizer can produce without padding: ``text_config.vocab_size - pad_to_multiple_of`` (32000)."""
        return int(self.text_config.vocab_size) - int(self.pad_to_multiple_of)

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.hidden_size)

    def timm_kwargs(self, index: int) -> dict[str, Any]:
        """Extra ``timm.create_model`` kwargs for backbone ``index`` ({} for real checkpoints)."""
        if not self.timm_model_kwargs:
            return {}
        return dict(self.timm_model_kwargs[index] or {})

    def to_dict(self) -> dict[str, Any]:
        """The config as written to ``config.json`` (norm_stats included)."""
        out = copy.deepcopy(self.raw)
        out.update(
            model_type=MODEL_TYPE,
            timm_model_ids=list(self.timm_model_ids),
            image_sizes=list(self.image_sizes),
            use_fused_vision_backbone=self.use_fused_vision_backbone,
            timm_override_act_layers=list(self.timm_override_act_layers),
            pad_to_multiple_of=self.pad_to_multiple_of,
            pad_token_id=self.pad_token_id,
            n_action_bins=self.n_action_bins,
            norm_stats=copy.deepcopy(self.norm_stats),
            text_config=out.get("text_config", {}) or _text_config_diff(self.text_config),
        )
        if self.timm_model_kwargs is not None:
            out["timm_model_kwargs"] = copy.deepcopy(self.timm_model_kwargs)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], model_dir: str | Path = "<dict>") -> OpenVLAOFTConfig:
        """Build from a ``config.json`` dict; the LLM config is ``text_config`` on top of Llama defaults."""
        if data.get("model_type") != MODEL_TYPE:
            raise ModelDirError(model_dir, f"config.json has model_type {data.get('model_type')!r}, expected 'openvla'")
        missing = [k for k in ("timm_model_ids", "image_sizes", "text_config") if k not in data]
        if missing:
            raise ModelDirError(model_dir, f"config.json lacks the keys {missing}")
        ids = list(data["timm_model_ids"])
        fused = data.get("use_fused_vision_backbone")
        fused = len(ids) == 2 if fused is None else bool(fused)
        text = {k: v for k, v in dict(data["text_config"]).items() if k not in ("model_type", "architectures")}
        text_config = LlamaConfig(**text)
        act = data.get("timm_override_act_layers") or [None] * len(ids)
        return cls(
            text_config=text_config,
            timm_model_ids=ids,
            image_sizes=[int(s) for s in data["image_sizes"]],
            use_fused_vision_backbone=fused,
            timm_override_act_layers=list(act),
            timm_model_kwargs=data.get("timm_model_kwargs"),
            pad_to_multiple_of=int(data.get("pad_to_multiple_of", 64)),
            pad_token_id=int(data.get("pad_token_id", 32000)),
            n_action_bins=int(data.get("n_action_bins", 256)),
            norm_stats=copy.deepcopy(data.get("norm_stats") or {}),
            raw=copy.deepcopy(data),
        )

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> OpenVLAOFTConfig:
        """Read ``config.json`` and merge ``dataset_statistics.json`` (when present) into ``norm_stats``."""
        model_dir = Path(model_dir)
        data = read_json(model_dir, "config.json")
        config = cls.from_dict(data, model_dir)
        if (model_dir / "dataset_statistics.json").is_file():
            config.norm_stats.update(read_json(model_dir, "dataset_statistics.json"))
        return config


def read_json(model_dir: Path, name: str) -> dict[str, Any]:
    """Parse ``model_dir/name``; a missing or unparsable file becomes a :class:`ModelDirError`."""
    path = Path(model_dir) / name
    if not path.is_file():
        raise ModelDirError(model_dir, f"{name} is missing")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelDirError(model_dir, f"{name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelDirError(model_dir, f"{name} holds a {type(data).__name__}, not a JSON object")
    return data


def _text_config_diff(text_config: LlamaConfig) -> dict[str, Any]:
    """Keys of ``text_config`` that differ from Llama defaults (what the released config.json stores)."""
    default = LlamaConfig().to_dict()
    current = text_config.to_dict()
    keep = {k: v for k, v in current.items() if default.get(k) != v and not k.startswith("_")}
    keep["model_type"] = "llama"
    return keep
