"""LoRA through peft: the reference's configuration, adapter save/load, merging with a coefficient, scaling.

Configuration (docs/models.md): r = α = 32 (scaling α/r = 1), dropout 0, Gaussian init (A ~ N(0, 1/r), B = 0),
``target_modules`` matched by suffix: the ViT ``qkv``/``proj``/``fc1``/``fc2`` (and the patch-embedding conv
``proj``), SigLIP's unused attention-pool ``q``/``kv``/``proj``/``mlp.fc*``, the projector ``fc1``–``fc3``,
every Llama ``q/k/v/o/gate/up/down_proj`` and ``lm_head``. Only LoRA A/B matrices (+ the value head) train.

Weight merge (docs/methods/weight_merge.md): earlier adapters are folded into the base one after another, each
scaled by c: ``W ← W + c · (α/r) · B_j A_j``; a fresh adapter is then trained on top. LoRA-scale evaluation
(docs/methods/lora_scale.md) multiplies every LoRA layer's scaling by s (s = 0 → base model, s = 1 → unchanged).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from torch import nn

from vlacrl.models.errors import LoraError

logger = logging.getLogger(__name__)

LORA_TARGET_MODULES: tuple[str, ...] = (
    "proj", "qkv", "fc1", "fc2",  # vision transformers (and the projector's fc1/fc2)
    "q", "kv", "fc3",  # SigLIP attention pool, projector
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head",  # Llama
)  # fmt: skip
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def lora_config(rank: int = 32, alpha: int | None = None, target_modules: Sequence[str] = LORA_TARGET_MODULES):
    """peft ``LoraConfig`` of the reference: α = r unless given, dropout 0, Gaussian init."""
    return LoraConfig(
        r=rank,
        lora_alpha=rank if alpha is None else alpha,
        lora_dropout=0.0,
        target_modules=list(target_modules),
        init_lora_weights="gaussian",
    )


def is_peft_model(model: nn.Module) -> bool:
    """Whether ``model`` is a ``PeftModel`` (LoRA) rather than a bare, fully trainable policy."""
    return hasattr(model, "get_base_model")


def base_module(model: nn.Module) -> nn.Module:
    """The model inside a ``PeftModel`` (or ``model`` itself when it is not wrapped)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _unfreeze_value_head(model: nn.Module) -> None:
    head = getattr(model, "value_head", None)
    if head is not None:
        for param in head.parameters():
            param.requires_grad = True


def add_lora(model: nn.Module, rank: int = 32, alpha: int | None = None) -> PeftModel:
    """Wrap ``model`` (modified in place) with a new trainable adapter ``default``; the value head stays trainable."""
    peft_model = get_peft_model(model, lora_config(rank, alpha))
    _unfreeze_value_head(peft_model.get_base_model())
    return peft_model


_ADAPTER_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$")


def check_adapter_dir(adapter_dir: str | Path) -> Path:
    """Raise :class:`LoraError` unless ``adapter_dir`` holds a readable ``adapter_config.json`` and adapter
    weights whose safetensors header opens (a cheap check: the tensors themselves are not read)."""
    path = Path(adapter_dir)
    if not (path / ADAPTER_CONFIG).is_file() or not any((path / w).is_file() for w in ADAPTER_WEIGHTS):
        raise LoraError(
            f"{path} is not a LoRA adapter directory: expected {ADAPTER_CONFIG} and "
            f"{' or '.join(ADAPTER_WEIGHTS)} (as written by PeftModel.save_pretrained or the reference's actor)"
        )
    read_adapter_config(path)
    adapter_tensor_shapes(path)
    return path


def read_adapter_config(adapter_dir: str | Path) -> dict:
    """``adapter_config.json`` of a LoRA adapter as a dict; :class:`LoraError` when unreadable or not LoRA."""
    file = Path(adapter_dir) / ADAPTER_CONFIG
    try:
        config = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LoraError(f"{file} is not readable JSON ({exc}); copy the adapter directory again") from None
    if not isinstance(config, dict) or str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise LoraError(f"{file} does not describe a LoRA adapter (peft_type LORA, with r and target_modules)")
    return config


def adapter_tensor_shapes(adapter_dir: str | Path) -> dict[str, tuple[int, ...]] | None:
    """Shape of every tensor of ``adapter_model.safetensors``, read from its header only; None for an
    ``adapter_model.bin`` adapter. :class:`LoraError` when the file is corrupted or truncated."""
    from safetensors import SafetensorError, safe_open

    file = Path(adapter_dir) / ADAPTER_WEIGHTS[0]
    if not file.is_file():
        return None
    try:
        with safe_open(str(file), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise LoraError(
            f"{file} is corrupted or truncated ({exc}); copy it again or re-run the stage that wrote it"
        ) from None


def check_adapter_fits(adapter_dir: str | Path, model_shapes: Mapping[str, Sequence[int]]) -> int:
    """Raise :class:`LoraError` unless the adapter fits the model whose stored weight shapes are ``model_shapes``
    (``"<module>.weight"`` → shape, as in the model's safetensors headers); returns the adapter's rank ``r``.

    Checked from headers only: every adapter tensor names a module of the model, its ``lora_A`` / ``lora_B``
    shapes match that module's input / output size and the rank ``r`` of ``adapter_config.json``, and at least
    one of the config's ``target_modules`` names a module of the model.
    """
    path = Path(adapter_dir)
    config = read_adapter_config(path)
    rank = config.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise LoraError(f"{path / ADAPTER_CONFIG}: r must be a positive integer, got {rank!r}")
    modules = [key[: -len(".weight")] for key in model_shapes if key.endswith(".weight")]
    targets = config.get("target_modules")
    if isinstance(targets, (list, tuple)) and targets:
        if not any(name == t or name.endswith("." + t) for t in targets for name in modules):
            raise LoraError(
                f"{path}: its target_modules {sorted(targets)} name no module of this model: the adapter was "
                "trained for another architecture"
            )
    shapes = adapter_tensor_shapes(path) or {}
    per_rank = not config.get("rank_pattern")
    missing, mismatched = [], []
    for key, shape in sorted(shapes.items()):
        match = _ADAPTER_KEY.match(key)
        if match is None:
            continue
        weight = model_shapes.get(f"{match['module']}.weight")
        if weight is None:
            missing.append(match["module"])
            continue
        if match["part"] == "A":  # [r, in, ...]
            fits = len(shape) >= 2 and shape[1] == weight[1] and (shape[0] == rank or not per_rank)
        else:  # [out, r, ...]
            fits = len(shape) >= 2 and shape[0] == weight[0] and (shape[1] == rank or not per_rank)
        if not fits:
            mismatched.append(f"{key} {list(shape)} vs weight {list(weight)}, r={rank}")
    if missing:
        raise LoraError(
            f"{path}: {len(missing)} adapter tensor(s) belong to modules this model does not have "
            f"(e.g. {missing[0]}): the adapter was trained for another model"
        )
    if mismatched:
        raise LoraError(
            f"{path}: {len(mismatched)} adapter tensor(s) do not fit the model's layers or the adapter's r "
            f"(e.g. {mismatched[0]}): the adapter was trained for another model"
        )
    return rank


def load_lora(model: nn.Module, adapter_dir: str | Path, trainable: bool = True) -> PeftModel:
    """Load a saved adapter (safetensors, or the reference's ``adapter_model.bin``) onto ``model``."""
    path = check_adapter_dir(adapter_dir)
    peft_model = PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
    if trainable:
        _unfreeze_value_head(peft_model.get_base_model())
    return peft_model


def save_lora(peft_model: PeftModel, out_dir: str | Path) -> Path:
    """Write the adapter as ``adapter_model.safetensors`` + ``adapter_config.json``, atomically (temp dir + rename)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        peft_model.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def lora_layers(model: nn.Module) -> list[tuple[str, LoraLayer]]:
    """All peft LoRA layers of ``model`` with their module names."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]


def scale_lora(model: nn.Module, scale: float) -> int:
    """Multiply the scaling of every active adapter in every LoRA layer by ``scale``; returns the layer count."""
    layers = lora_layers(model)
    if not layers:
        raise LoraError("no LoRA layers found: load or create an adapter before scaling it")
    for _, layer in layers:
        layer.scale_layer(float(scale))
    return len(layers)


def merge_adapters(model: nn.Module, adapter_dirs: Sequence[str | Path], coefficient: float) -> nn.Module:
    """Fold each adapter into the base weights in order, scaled by ``coefficient``: W ← W + c·ΔW_j.

    Returns the plain (un-wrapped) model with merged weights.
    """
    if not 0.0 <= float(coefficient) <= 1.0:
        raise LoraError(f"the merge coefficient must be in [0, 1], got {coefficient}")
    for index, adapter_dir in enumerate(adapter_dirs):
        peft_model = load_lora(model, adapter_dir, trainable=False)
        scale_lora(peft_model, coefficient)
        model = peft_model.merge_and_unload()
        logger.info(
            "merged adapter %d/%d (%s) with coefficient %s", index + 1, len(adapter_dirs), adapter_dir, coefficient
        )
    return model


def setup_lora(
    model: nn.Module,
    *,
    rank: int = 32,
    lora_path: str | Path | None = None,
    lora_paths: Sequence[str | Path] = (),
    merge_coefficient: float = 1.0,
    lora_scale: float = 1.0,
) -> PeftModel:
    """The reference's adapter set-up: merge ``lora_paths`` (coefficient c), then load ``lora_path`` (trainable) or
    add a fresh adapter, then scale the adapters by ``lora_scale``."""
    if lora_paths:
        model = merge_adapters(model, lora_paths, merge_coefficient)
    peft_model = load_lora(model, lora_path) if lora_path is not None else add_lora(model, rank)
    if float(lora_scale) != 1.0:
        scale_lora(peft_model, lora_scale)
    return peft_model


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that require gradients."""
    return [name for name, param in model.named_parameters() if param.requires_grad]
