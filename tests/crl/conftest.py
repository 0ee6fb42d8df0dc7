"""Shared fixtures for the CRL method tests: a tiny checkpoint and the composed CPU config as a plain dict."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def crl_tiny_dir(tmp_path_factory):
    """A tiny random OpenVLA-OFT directory of the real architecture (seed 0), written once per session."""
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("crl_models") / "tiny-openvla-oft", seed=0)


@pytest.fixture(scope="session")
def crl_cfg(crl_tiny_dir):
    """``configs/cpu_tiny.yaml`` resolved to a dict, pointing at the tiny checkpoint, small LoRA rank."""
    from omegaconf import OmegaConf

    from vlacrl.config.compose import compose

    overrides = [f"actor.checkpoint_load_path={crl_tiny_dir}", "actor.model.lora_rank=4"]
    return OmegaConf.to_container(compose("cpu_tiny", overrides), resolve=True)
