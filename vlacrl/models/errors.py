"""Errors raised by the model layer, each naming what is wrong and how to fix it."""

from __future__ import annotations

from pathlib import Path

#: Files every HF-format OpenVLA-OFT checkpoint directory must contain (besides the weights).
REQUIRED_FILES = (
    "config.json",
    "dataset_statistics.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
)
#: At least one of these tokenizer files must be present.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
#: Weights: a sharded checkpoint with its index, or one single file.
WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors")

_HELP = (
    "An OpenVLA-OFT model directory needs: config.json (model_type 'openvla'), dataset_statistics.json, "
    "preprocessor_config.json, tokenizer_config.json with tokenizer.json or tokenizer.model, "
    "and the weights as model.safetensors.index.json + its model-*.safetensors shards (or one model.safetensors). "
    "Copy the Hugging Face checkpoint directory (e.g. Haozhan72/Openvla-oft-SFT-libero-spatial-traj1) under "
    "./model/ (see model/README.md), or write a tiny random one with `vlacrl-make-tiny-checkpoint DIR`."
)


class ModelDirError(ValueError):
    """A model directory is missing, incomplete or malformed; the message lists the expected files."""

    def __init__(self, model_dir: str | Path, problem: str):
        self.model_dir = Path(model_dir)
        self.problem = problem
        super().__init__(f"Bad model directory {self.model_dir}: {problem}. {_HELP}")


class CheckpointKeyError(ModelDirError):
    """The stored tensors do not match the model built from config.json (missing/unexpected/mis-shaped keys)."""


class LoraError(RuntimeError):
    """A LoRA operation could not be applied (no LoRA layers, bad adapter directory, bad coefficient)."""


class CNNCheckpointError(ValueError):
    """A Simple CNN checkpoint file is missing, unreadable or lacks its metadata; the message says what to pass."""


class ModelPathError(ValueError):
    """A config key names a model path (or family) that cannot be used; ``key`` is the dotted config key."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")
