"""The autoregressive OpenVLA policy (vlacrl/models/openvla/policy.py, docs/models.md): KV-cache generation equals
generation without it, the log-probs the rollout records equal the actor's teacher-forced ones, attention is causal,
the decoded action follows OpenVLA's de-tokenisation, the value head reads the same position in both views, and the
released 7B layout loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlacrl.data.precompute import demo_action_logits
from vlacrl.models.errors import ModelPathError
from vlacrl.models.families import get_family
from vlacrl.models.openvla import OpenVLAPolicy
from vlacrl.models.openvla_oft import OpenVLAOFTConfig, OpenVLAOFTPolicy, load_policy
from vlacrl.models.openvla_oft.presets import openvla_7b_config

INSTRUCTIONS = ["pick up the black bowl", "open the top drawer of the cabinet and put the bowl inside", "stack"]


@pytest.fixture(scope="module")
def openvla(tiny_dir):
    """The tiny checkpoint as OpenVLA, with a value head (float32)."""
    return load_policy(tiny_dir, dtype=torch.float32, unnorm_key="libero_spatial", vh_mode="a0",
                       num_action_chunks=1, policy_class=OpenVLAPolicy)  # fmt: skip


@pytest.fixture(scope="module")
def batch(processor):
    images = np.random.default_rng(0).integers(0, 256, (len(INSTRUCTIONS), 224, 224, 3), dtype=np.uint8)
    return processor(INSTRUCTIONS, images)  # prompts of different lengths: left padding in the batch


def sample(policy, batch, seed, **kwargs):
    return policy.predict_action_batch(**batch, generator=torch.Generator().manual_seed(seed), **kwargs)


@pytest.mark.parametrize("greedy", [False, True])
def test_generation_with_the_kv_cache_equals_generation_without_it(openvla, batch, greedy):
    cached = sample(openvla, batch, 3, greedy=greedy, temperature=1.6)
    plain = sample(openvla, batch, 3, greedy=greedy, temperature=1.6, use_cache=False)
    assert cached.action_tokens.shape == (3, 1, 7) and cached.logprobs.shape == (3, 7)
    assert torch.equal(cached.action_tokens, plain.action_tokens)
    torch.testing.assert_close(cached.logprobs, plain.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached.values, plain.values, atol=1e-5, rtol=0)


def test_rollout_logprobs_equal_the_teacher_forced_forward_of_the_actor(openvla, batch):
    for temperature in (1.0, 1.6):
        drawn = sample(openvla, batch, 5, temperature=temperature)
        scored = openvla.action_logprobs(**batch, action_tokens=drawn.action_tokens, temperature=temperature)
        torch.testing.assert_close(scored["logprobs"], drawn.logprobs, atol=1e-5, rtol=0)
        torch.testing.assert_close(scored["processed_logits"] / temperature, drawn.processed_logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(scored["values"], drawn.values, atol=1e-5, rtol=0)
        assert scored["raw_logits"].shape == (3, 7, openvla.config.text_config.vocab_size)
        assert bool((scored["entropy"] > 0).all())


def test_the_teacher_forced_scores_depend_on_the_earlier_tokens_only(openvla, batch):
    """Causal attention: changing token j changes the scores of tokens after j, never those up to j; the
    scores of a token given a *different* prefix differ (so the teacher-forced test above is not vacuous)."""
    tokens = sample(openvla, batch, 7).action_tokens.reshape(3, 7)
    changed = tokens.clone()
    changed[:, 3] = torch.where(tokens[:, 3] == 31800, 31900, 31800)
    before = openvla.action_logprobs(**batch, action_tokens=tokens)["raw_logits"]
    after = openvla.action_logprobs(**batch, action_tokens=changed)["raw_logits"]
    torch.testing.assert_close(after[:, :4], before[:, :4], atol=1e-5, rtol=0)
    assert (after[:, 4:] - before[:, 4:]).abs().amax() > 1e-3


def test_every_attention_module_is_causal_and_the_oft_policy_is_not(openvla, policy):
    flags = lambda model: {m.is_causal for m in model.language_model.modules() if hasattr(m, "q_proj")}  # noqa: E731
    assert flags(openvla) == {True} and flags(policy) == {False}


def test_the_action_is_openvlas_de_tokenisation_of_the_generated_tokens(openvla, batch):
    """bin k = clip(32000 − token − 1, 0, 254), centre_k of linspace(−1, 1, 256), then
    a = ½(x + 1)(q99 − q01 + 1e−8) + q01 on masked dims (the gripper keeps x), written out here by hand."""
    drawn = sample(openvla, batch, 11)
    stats = openvla.config.norm_stats[openvla.unnorm_key]["action"]
    q01, q99, mask = (np.asarray(stats[k]) for k in ("q01", "q99", "mask"))
    bins = np.linspace(-1, 1, 256)
    centres = (bins[:-1] + bins[1:]) / 2
    k = np.clip(32000 - drawn.action_tokens.numpy() - 1, 0, 254)
    normalized = centres[k]
    expected = np.where(mask, 0.5 * (normalized + 1) * (q99 - q01 + 1e-8) + q01, normalized)
    np.testing.assert_allclose(drawn.actions.numpy(), expected, atol=1e-9)
    assert drawn.actions.shape == (3, 1, 7) and not mask.all()  # the gripper dim is not un-normalised


def test_only_one_action_per_step_is_accepted(tiny_dir):
    with pytest.raises(ValueError, match="one action per step"):
        load_policy(tiny_dir, dtype=torch.float32, num_action_chunks=8, policy_class=OpenVLAPolicy)
    cfg = {"actor": {"model": {"model_name": "openvla", "num_action_chunks": 8}}}
    with pytest.raises(ModelPathError, match="actor.model.num_action_chunks: OpenVLA decodes one action per env step"):
        get_family("openvla").check_paths(cfg, pending=None)


def test_the_released_7b_layout_builds_on_meta_with_openvlas_parameter_count():
    """openvla/openvla-7b(-finetuned-libero-*): 7,541,237,184 parameters under the OFT checkpoints' key names."""
    config = OpenVLAOFTConfig.from_dict(openvla_7b_config())
    with torch.device("meta"):
        openvla, oft = OpenVLAPolicy(config), OpenVLAOFTPolicy(config)
    shapes = {k: tuple(v.shape) for k, v in openvla.checkpoint_state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in oft.checkpoint_state_dict().items()}
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 7_541_237_184
    assert shapes["language_model.lm_head.weight"] == (32064, 4096) and len(shapes) == 982
    assert openvla.num_action_tokens == 7 and openvla.token_begin == 31744


def test_cached_replay_logits_are_the_teacher_forced_rows_of_the_expert_tokens(openvla, processor):
    """DER's logit cache (vlacrl/data/precompute.py) scores each frame's expert tokens as the actor does; a
    token-by-token policy without expert tokens is refused instead of scoring one row."""
    images = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    expert = torch.randint(31744, 32000, (3, 7), generator=torch.Generator().manual_seed(2))
    cached = demo_action_logits(openvla, processor, INSTRUCTIONS[0], images, batch_size=2, action_tokens=expert)
    inputs = processor([INSTRUCTIONS[0]] * 3, torch.from_numpy(images).to(torch.float32))
    scored = openvla.action_logprobs(**inputs, action_tokens=expert)["processed_logits"]
    assert cached.shape == (3, 7, 256)
    torch.testing.assert_close(cached, scored, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="expert action tokens of every frame"):
        demo_action_logits(openvla, processor, INSTRUCTIONS[0], images)
