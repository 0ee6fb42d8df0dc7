"""Reading and writing HF-format weights: sharded safetensors + ``model.safetensors.index.json``.

Loading builds the policy on the ``meta`` device (no memory, no random init), checks the stored key names
and shapes against it (any missing, unexpected or mis-shaped tensor is an error), then assigns the stored
tensors (cast to ``dtype``, moved to ``device``). Non-persistent buffers (Llama's rotary frequencies) and
the value head, which checkpoints never hold, are created afterwards on the target device.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from vlacrl.models.errors import (
    REQUIRED_FILES,
    TOKENIZER_FILES,
    WEIGHT_FILES,
    CheckpointKeyError,
    ModelDirError,
)
from vlacrl.models.openvla_oft.config import OpenVLAOFTConfig, read_json
from vlacrl.models.openvla_oft.llm import choose_attn_implementation
from vlacrl.models.openvla_oft.policy import OpenVLAOFTPolicy
from vlacrl.models.value_head import ValueHead, value_head_out_dim

logger = logging.getLogger(__name__)

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def validate_model_dir(model_dir: str | Path) -> Path:
    """Return ``model_dir`` as a Path, or raise :class:`ModelDirError` naming every missing file."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelDirError(path, "the directory does not exist")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise ModelDirError(path, f"missing {', '.join(missing)}")
    OpenVLAOFTConfig.from_model_dir(path)  # config.json parses and is an OpenVLA config
    read_json(path, "preprocessor_config.json")
    return path


def read_weight_shapes(model_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the stored tensors from the safetensors headers of every shard (no tensor is read).

    Raises :class:`ModelDirError` for a shard the index names that is missing, corrupted or truncated.
    """
    from safetensors import SafetensorError  # the exception type only

    path = Path(model_dir)
    try:
        return stored_shapes(path, weight_map(path))
    except ModelDirError:
        raise
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelDirError(path, f"a weight file is corrupted or truncated ({exc}); copy it again") from None


def weight_map(model_dir: Path) -> dict[str, str]:
    """Tensor name → shard file name, from the index (or every key of a single ``model.safetensors``)."""
    if (model_dir / INDEX_FILE).is_file():
        index = read_json(model_dir, INDEX_FILE)
        if not isinstance(index.get("weight_map"), dict):
            raise ModelDirError(model_dir, f"{INDEX_FILE} has no 'weight_map'")
        mapping = dict(index["weight_map"])
    else:
        with safe_open(model_dir / SINGLE_FILE, framework="pt") as handle:
            mapping = dict.fromkeys(handle.keys(), SINGLE_FILE)
    absent = sorted({shard for shard in mapping.values() if not (model_dir / shard).is_file()})
    if absent:
        raise ModelDirError(model_dir, f"the index names shards that are missing: {absent}")
    return mapping


def stored_shapes(model_dir: Path, mapping: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """Shape of every stored tensor, read from the safetensors headers only."""
    shapes: dict[str, tuple[int, ...]] = {}
    for shard in sorted(set(mapping.values())):
        with safe_open(model_dir / shard, framework="pt") as handle:
            for key in handle.keys():
                if mapping.get(key) == shard:
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


@dataclass
class KeyReport:
    """Differences between stored tensors and the model's expected state dict."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 8) -> str:
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("shape", self.mismatched)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[:limit]})")
        return "; ".join(parts) or "all keys match"


def compare_keys(expected: dict[str, tuple[int, ...]], stored: dict[str, tuple[int, ...]]) -> KeyReport:
    """Key names and shapes of ``stored`` against ``expected``."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    mismatched = sorted(
        f"{k}: stored {stored[k]} vs model {expected[k]}"
        for k in set(expected) & set(stored)
        if tuple(stored[k]) != tuple(expected[k])
    )
    return KeyReport(missing, unexpected, mismatched)


def read_tensors(model_dir: Path, mapping: dict[str, str], dtype: torch.dtype, device: str) -> dict[str, torch.Tensor]:
    """All stored tensors, cast to ``dtype`` (floating ones only) on ``device``."""
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(set(mapping.values())):
        with safe_open(model_dir / shard, framework="pt", device="cpu") as handle:
            for key in handle.keys():
                if mapping.get(key) != shard:
                    continue
                tensor = handle.get_tensor(key)
                target = dtype if tensor.is_floating_point() else tensor.dtype
                tensors[key] = tensor.to(device=device, dtype=target)
    return tensors


def save_sharded(
    state_dict: dict[str, torch.Tensor], out_dir: str | Path, max_shard_bytes: int = 5 * 2**30
) -> list[str]:
    """Write ``model-0000i-of-0000n.safetensors`` shards (each ≤ ``max_shard_bytes`` unless one tensor is larger)
    and ``model.safetensors.index.json``; returns the shard names."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state_dict.items():
        nbytes = tensor.numel() * tensor.element_size()
        if groups[-1] and size + nbytes > max_shard_bytes:
            groups.append({})
            size = 0
        groups[-1][key] = tensor.detach().contiguous().cpu()
        size += nbytes
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    mapping: dict[str, str] = {}
    for name, group in zip(names, groups):
        save_file(group, str(out_dir / name), metadata={"format": "pt"})
        mapping.update(dict.fromkeys(group, name))
    total = sum(t.numel() * t.element_size() for t in state_dict.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(mapping.items()))}
    (out_dir / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return names


WEIGHT_SUFFIXES = (".safetensors",)


def copy_non_weight_files(src: Path, dst: Path) -> None:
    """Every file of HF model dir ``src`` but the weights and their index (config, tokenizer, processor, action
    statistics) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in Path(src).iterdir():
        if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES) and path.name != INDEX_FILE:
            shutil.copy2(path, dst / path.name)


def save_model_dir(policy: OpenVLAOFTPolicy, state: dict[str, torch.Tensor], out_dir: str | Path) -> Path:
    """A fully fine-tuned policy as an HF-format model directory that :func:`load_policy` (and the reference)
    loads: ``state``'s checkpoint tensors (module names; a tensor it lacks comes from ``policy``) as sharded
    safetensors + index, and the non-weight files of the directory ``policy`` was loaded from."""
    out = Path(out_dir)
    copy_non_weight_files(Path(policy.source_dir), out)
    own = policy.checkpoint_state_dict()
    save_sharded({k: (state[k] if k in state else v).detach().cpu() for k, v in own.items()}, out)
    return out


def load_policy(
    model_dir: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    action_dim: int = 7,
    num_action_chunks: int = 8,
    unnorm_key: str | None = None,
    vh_mode: str | None = None,
    value_type: str = "step_level",
    attn_implementation: str | None = None,
    policy_class: type[OpenVLAOFTPolicy] = OpenVLAOFTPolicy,
) -> OpenVLAOFTPolicy:
    """Load an HF-format OpenVLA-OFT directory (tiny or 7B) into an :class:`OpenVLAOFTPolicy` in eval mode
    (``policy_class``: a subclass with the same tensors, e.g. the autoregressive ``OpenVLAPolicy``).

    Raises :class:`ModelDirError` for missing/malformed files and :class:`CheckpointKeyError` when the stored
    tensors do not match the architecture described by ``config.json``.
    """
    path = validate_model_dir(model_dir)
    config = OpenVLAOFTConfig.from_model_dir(path)
    device = str(device)
    attn = choose_attn_implementation(attn_implementation, device)
    with torch.device("meta"):
        policy = policy_class(
            config,
            action_dim=action_dim,
            num_action_chunks=num_action_chunks,
            unnorm_key=unnorm_key,
            attn_implementation=attn,
        )
    mapping = weight_map(path)
    expected = {k: tuple(v.shape) for k, v in policy.checkpoint_state_dict().items()}
    report = compare_keys(expected, stored_shapes(path, mapping))
    if not report.ok:
        raise CheckpointKeyError(path, f"stored tensors do not match config.json: {report.describe()}")
    policy.load_state_dict(read_tensors(path, mapping, dtype, device), strict=True, assign=True)
    _rebuild_rotary(policy, device)
    if vh_mode is not None:
        attach_value_head(policy, vh_mode, value_type, dtype, device)
    _check_materialized(policy, path)
    policy.source_dir = str(path)  # where its config, tokenizer and statistics live (save_model_dir copies them)
    logger.info("loaded %s (%d tensors, attention %s, %s on %s)", path, len(expected), attn, dtype, device)
    return policy.eval()


def attach_value_head(
    policy: OpenVLAOFTPolicy, vh_mode: str, value_type: str, dtype: torch.dtype, device: str
) -> ValueHead:
    """Create a freshly initialised value head (mode ``a0``) on ``policy``."""
    if vh_mode != "a0":
        raise ValueError(f"vh_mode must be None or 'a0', got {vh_mode!r}")
    head = ValueHead(policy.config.hidden_size, value_head_out_dim(value_type, policy.num_action_chunks))
    policy.value_head = head.to(device=device, dtype=dtype)
    policy.vh_mode = vh_mode
    return policy.value_head


def _rebuild_rotary(policy: OpenVLAOFTPolicy, device: str) -> None:
    """Rotary frequencies are non-persistent buffers: recompute them on the target device."""
    backbone = policy.language_model.model
    with torch.device(device):
        backbone.rotary_emb = LlamaRotaryEmbedding(config=backbone.config)


def _check_materialized(policy: OpenVLAOFTPolicy, model_dir: Path) -> None:
    leftovers = [n for n, t in [*policy.named_parameters(), *policy.named_buffers()] if t.is_meta]
    if leftovers:
        raise CheckpointKeyError(model_dir, f"tensors left uninitialised after loading: {leftovers[:8]}")
