"""Observation → model inputs: the LIBERO prompt and the two-backbone image normalisation (docs/models.md).

Prompt: ``"In: What action should the robot take to {instruction.lower()}?\\nOut: "`` tokenised with the
checkpoint's tokenizer, then laid out as the reference's processor leaves it: ``[BOS, PAD…PAD, prompt
tokens…, 29871]`` with mask ``[1, 0…0, 1…1]``, length ``max_length`` (128). The final space token 29871 is
appended when a tokenizer does not produce it.

Images: uint8 [B, 256, 256, 3] (or [B, 3, H, W]; float tensors with values in 0..255 for replay data) →
for each backbone: torchvision ``resize`` to 224 (bicubic, antialiased; directly on the uint8 tensor),
center crop (a no-op), ``/ 255``, normalise with that backbone's mean/std from
``preprocessor_config.json`` (``tvf_normalize_params``) → channel-concatenated ``pixel_values``
[B, 1, 6, 224, 224] float32 (cast to the model dtype by the policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TVF
from torchvision.transforms import InterpolationMode
from transformers import AutoTokenizer, LlamaConfig, PreTrainedTokenizerBase

from vlacrl.models.errors import ModelDirError
from vlacrl.models.openvla_oft.config import read_json
from vlacrl.models.openvla_oft.policy import BOS_TOKEN_ID, PROMPT_END_TOKEN_ID

PROMPT_TEMPLATE = "In: What action should the robot take to {instruction}?\nOut: "
MAX_PROMPT_LENGTH = 128
_INTERPOLATIONS = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC}


def build_prompt(task_description: str) -> str:
    """The LIBERO prompt for one instruction (lower-cased, as the reference does)."""
    return PROMPT_TEMPLATE.format(instruction=task_description.lower())


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer via ``AutoTokenizer`` (``tokenizer.json`` suffices), left padding.

    A ``LlamaConfig`` is passed as the model config so transformers neither parses the ``openvla`` config.json
    (whose ``auto_map`` points at remote code) nor looks anything up online.
    """
    try:
        return AutoTokenizer.from_pretrained(
            str(model_dir), padding_side="left", config=LlamaConfig(), local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise ModelDirError(model_dir, f"the tokenizer files cannot be loaded ({exc})") from exc


@dataclass
class PromptTokenizer:
    """Tokenises prompts into ``input_ids`` [B, L] int64 and ``attention_mask`` [B, L] bool (L = max_length)."""

    tokenizer: PreTrainedTokenizerBase
    max_length: int = MAX_PROMPT_LENGTH

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 32000

    def prompt_ids(self, prompt: str) -> list[int]:
        """Token ids of one prompt without BOS, ending in 29871."""
        ids = list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        if ids and ids[0] == BOS_TOKEN_ID:
            ids = ids[1:]
        if not ids or ids[-1] != PROMPT_END_TOKEN_ID:
            ids.append(PROMPT_END_TOKEN_ID)
        return ids

    def __call__(self, task_descriptions: list[str]) -> dict[str, torch.Tensor]:
        rows, masks = [], []
        for text in task_descriptions:
            ids = self.prompt_ids(build_prompt(text))
            n_pad = self.max_length - 1 - len(ids)
            if n_pad < 0:
                raise ValueError(f"prompt of {len(ids) + 1} tokens exceeds max_length={self.max_length}: {text!r}")
            rows.append([BOS_TOKEN_ID] + [self.pad_id] * n_pad + ids)
            masks.append([True] + [False] * n_pad + [True] * len(ids))
        return {
            "input_ids": torch.tensor(rows, dtype=torch.long),
            "attention_mask": torch.tensor(masks, dtype=torch.bool),
        }


@dataclass
class BackboneTransform:
    """Resize size (H, W), interpolation, mean and std for one vision backbone."""

    size: tuple[int, int]
    interpolation: InterpolationMode
    mean: list[float]
    std: list[float]
    antialias: bool = True


@dataclass
class ImageTransform:
    """Per-backbone resize + normalise; ``__call__`` gives ``pixel_values`` [B, 1, 3·n_backbones, H, W]."""

    backbones: list[BackboneTransform]

    @classmethod
    def from_preprocessor_config(cls, data: dict[str, Any]) -> ImageTransform:
        """From ``preprocessor_config.json`` (``tvf_resize_params`` + ``tvf_normalize_params``, which the
        released files store bf16-rounded; the reference applies them as stored)."""
        backbones = []
        for resize, norm in zip(data["tvf_resize_params"], data["tvf_normalize_params"]):
            size = resize["size"]
            size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
            interpolation = _INTERPOLATIONS[int(resize.get("interpolation", 3))]
            backbones.append(
                BackboneTransform(
                    size, interpolation, list(norm["mean"]), list(norm["std"]), bool(resize.get("antialias", True))
                )
            )
        return cls(backbones)

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> ImageTransform:
        data = read_json(Path(model_dir), "preprocessor_config.json")
        try:
            return cls.from_preprocessor_config(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(model_dir, f"preprocessor_config.json is malformed ({exc!r})") from exc

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """images [B, H, W, 3] or [B, 3, H, W] (uint8, or float in 0..255) → [B, 1, 3·n, h, w] float32."""
        chw = to_chw_batch(images)
        outputs, scaled_by_resize = [], {}
        for spec in self.backbones:
            key = (tuple(spec.size), spec.interpolation, spec.antialias)
            if key not in scaled_by_resize:  # both backbones of the fused checkpoints resize alike: resize once
                resized = TVF.resize(chw, list(spec.size), interpolation=spec.interpolation, antialias=spec.antialias)
                resized = TVF.center_crop(resized, list(spec.size))
                scaled_by_resize[key] = resized.to(torch.float32) / 255.0
            outputs.append(TVF.normalize(scaled_by_resize[key], spec.mean, spec.std))
        return torch.cat(outputs, dim=1).unsqueeze(1)


def to_chw_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[B, H, W, 3] or [B, 3, H, W] array/tensor → [B, 3, H, W] tensor (dtype kept)."""
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # frames from the env workers arrive read-only; torch wants to own writable memory
    tensor = torch.as_tensor(images)
    if tensor.ndim != 4:
        raise ValueError(f"images must be 4-D [B, H, W, 3] or [B, 3, H, W], got {tuple(tensor.shape)}")
    if tensor.shape[1] != 3 and tensor.shape[-1] == 3:
        tensor = tensor.permute(0, 3, 1, 2)
    return tensor.contiguous()


@dataclass
class OpenVLAOFTProcessor:
    """Prompt tokenizer + image transform of one model directory."""

    prompts: PromptTokenizer
    images: ImageTransform

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, max_length: int = MAX_PROMPT_LENGTH) -> OpenVLAOFTProcessor:
        return cls(PromptTokenizer(load_tokenizer(model_dir), max_length), ImageTransform.from_model_dir(model_dir))

    def __call__(self, task_descriptions: list[str], images: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        """→ ``input_ids`` [B, L], ``attention_mask`` [B, L] bool, ``pixel_values`` [B, 1, 6, 224, 224] float32."""
        batch = self.prompts(list(task_descriptions))
        pixel_values = self.images(images)
        if pixel_values.shape[0] != batch["input_ids"].shape[0]:
            raise ValueError(f"{pixel_values.shape[0]} images for {batch['input_ids'].shape[0]} instructions")
        batch["pixel_values"] = pixel_values
        return batch
