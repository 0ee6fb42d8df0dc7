"""Full fine-tuning (``actor.model.is_lora=False``): a trained policy saves as an HF-format model directory that
loads back exactly; resume and the next stage start from that directory; methods with LoRA-only state refuse it."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.config.validate import ConfigError, check_method
from vlacrl.crl.base import StageRecord
from vlacrl.crl.registry import build_method
from vlacrl.models.adapter_files import VALUE_HEAD_FILE
from vlacrl.models.families import family_of as policy_family
from vlacrl.models.openvla_oft import load_policy, validate_model_dir, write_tiny_checkpoint
from vlacrl.workers.policy_setup import build_policy


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny", seed=0)


def cfg_for(tiny, *extra: str) -> dict:
    overrides = [f"actor.checkpoint_load_path={tiny}", "actor.model.is_lora=False", *extra]
    return OmegaConf.to_container(compose("cpu_tiny", overrides), resolve=True)


def test_a_fully_trained_policy_saves_as_a_model_dir_that_loads_back_exactly(tiny, tmp_path):
    cfg = cfg_for(tiny, "algorithm=ppo")
    model = build_policy(cfg, str(tiny), use_gpu=False)
    assert all(p.requires_grad for p in model.parameters()) and not hasattr(model, "get_base_model")
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    state = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = tmp_path / "actor"
    policy_family(cfg).save(model, state, out)
    validate_model_dir(out)  # config, tokenizer, processor, statistics and the weight index are all there
    assert (out / VALUE_HEAD_FILE).exists()  # PPO's value head travels beside the HF weights
    loaded = load_policy(out, dtype=torch.float32).checkpoint_state_dict()
    mine = model.checkpoint_state_dict()
    assert sorted(loaded) == sorted(mine) and all(torch.equal(loaded[k], mine[k]) for k in mine)
    resumed = policy_family(cfg).resume_cfg(cfg, out)
    assert resumed["actor"]["checkpoint_load_path"] == str(out) and not resumed["actor"]["model"].get("lora_path")


def test_the_next_stage_and_its_evaluation_start_from_the_saved_model(tiny):
    method = build_method(cfg_for(tiny, "crl=seq_ft"))
    history = [StageRecord(0, [0], "r0", "r0/actor")]
    assert method.train_overrides(1, history) == {"actor.checkpoint_load_path": "r0/actor",
                                                  "actor.create_tiny_checkpoint": False}  # fmt: skip
    assert method.eval_overrides(history[0], history)["actor.checkpoint_load_path"] == "r0/actor"
    lora = build_method(cfg_for(tiny, "crl=seq_ft", "actor.model.is_lora=True"))
    assert lora.train_overrides(1, history) == {"actor.model.lora_path": "r0/actor"}


@pytest.mark.parametrize("method", ["ewc", "slca", "crl_vla", "weight_merge"])
def test_methods_with_lora_only_state_refuse_full_finetuning(tiny, method):
    with pytest.raises(ConfigError, match=f"crl={method} trains LoRA adapters"):
        check_method(compose("cpu_tiny", [f"actor.checkpoint_load_path={tiny}", "actor.model.is_lora=False",
                                          f"crl={method}"]))  # fmt: skip
    check_method(
        compose("cpu_tiny", [f"actor.checkpoint_load_path={tiny}", "actor.model.is_lora=False", "crl=multitask"])
    )
