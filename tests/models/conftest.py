"""Shared fixtures: one tiny checkpoint directory per session, loaded in float32 on CPU."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from vlacrl.models.openvla_oft import OpenVLAOFTProcessor, load_policy, write_tiny_checkpoint  # noqa: E402

INSTRUCTIONS = [
    "pick up the black bowl between the plate and the ramekin and place it on the plate",
    "Open the top drawer of the cabinet",
]


@pytest.fixture(scope="session")
def instructions():
    return list(INSTRUCTIONS)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random OpenVLA-OFT directory (seed 0), written once."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("models") / "tiny-openvla-oft", seed=0)


@pytest.fixture(scope="session")
def policy(tiny_dir):
    """The tiny policy in float32; shared, so tests must not modify it (load a fresh one for LoRA)."""
    return load_policy(tiny_dir, dtype=torch.float32, unnorm_key="libero_spatial", vh_mode="a0")


@pytest.fixture(scope="session")
def processor(tiny_dir):
    return OpenVLAOFTProcessor.from_model_dir(tiny_dir)


@pytest.fixture(scope="session")
def images():
    """Two 256×256 RGB uint8 images: uniform mid-grey and a fixed random one."""
    generator = torch.Generator().manual_seed(0)
    grey = torch.full((256, 256, 3), 128, dtype=torch.uint8)
    noise = torch.randint(0, 256, (256, 256, 3), dtype=torch.uint8, generator=generator)
    return torch.stack([grey, noise])


@pytest.fixture(scope="session")
def batch(processor, images):
    """Processed inputs for the two instructions and images: ids/mask [2, 128], pixel_values [2, 1, 6, 224, 224]."""
    return processor(INSTRUCTIONS, images)
