"""CRL-VLA (``crl=crl_vla``) on the tiny OpenVLA-OFT: GCVF goal conditioning, the dual critic, the loss terms
against hand computations, KL(π_old‖π) = 0 for an unchanged policy, B_old persistence, the early stop."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from vlacrl.algorithms.masks import compute_loss_mask
from vlacrl.config.compose import compose
from vlacrl.crl.base import StageRecord
from vlacrl.crl.common import MethodConfigError
from vlacrl.crl.crl_vla import CRLVLA
from vlacrl.crl.crl_vla import losses as L
from vlacrl.crl.crl_vla.buffer import BUFFER_KEYS, OldTaskBuffer, Reservoir
from vlacrl.crl.crl_vla.gcvf import (
    CRITICS_ATTR,
    GoalConditionedCritic,
    instruction_mask,
    tokens_to_normalized_actions,
)
from vlacrl.crl.registry import build_method
from vlacrl.models.families import ActionVocabulary
from vlacrl.models.lora import base_module
from vlacrl.models.openvla_oft import ActionTokenizer, OpenVLAOFTProcessor
from vlacrl.workers.policy_setup import build_policy

INSTRUCTIONS = ("pick up the black bowl", "open the top drawer")
MODEL_KEYS = ("input_ids", "attention_mask", "pixel_values", "action_tokens")
N, M, C, D = 2, 2, 8, 7


def make_cfg(tiny_dir, *extra: str) -> dict:
    overrides = [f"actor.checkpoint_load_path={tiny_dir}", "actor.model.lora_rank=4", "crl=crl_vla",
                 "crl.critic_hidden=32", "crl.b_old_per_task=3", "crl.b_old_batch_size=2", *extra]  # fmt: skip
    return OmegaConf.to_container(compose("cpu_tiny", overrides), resolve=True)


@pytest.fixture(scope="module")
def processor(crl_tiny_dir):
    return OpenVLAOFTProcessor.from_model_dir(crl_tiny_dir)


def setup(cfg: dict):
    model = build_policy(cfg, str(cfg["actor"]["checkpoint_load_path"]), use_gpu=False)
    method = build_method(cfg)
    method.setup_actor(model)
    return model, method


def rollout_batch(processor, seed: int = 0) -> dict[str, torch.Tensor]:
    """An actor-layout batch [N=2 chunk steps, M=2 columns]: column 0 succeeds in chunk 1 (reward 5), column 1 not."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (N * M, 64, 64, 3), dtype=torch.uint8, generator=gen)
    inputs = processor([INSTRUCTIONS[i % M] for i in range(N * M)], images)
    batch = {k: v.reshape(N, M, *v.shape[1:]) for k, v in inputs.items()}
    batch["action_tokens"] = torch.randint(31744, 32000, (N, M, C, D), generator=gen)
    batch["prev_logprobs"] = -torch.rand(N, M, C * D, generator=gen) - 5.0
    batch["rewards"] = torch.zeros(N, M, C)
    batch["rewards"][1, 0, 3] = 5.0
    dones = torch.zeros(N + 1, M, C, dtype=torch.bool)
    dones[2, 0, 3:] = True
    batch["dones"] = dones
    batch["loss_mask"], batch["loss_mask_sum"] = compute_loss_mask(dones)
    batch["advantages"] = torch.randn(N, M, C, generator=gen)
    return batch


def micro_from(batch: dict, keys) -> dict[str, torch.Tensor]:
    """The flattened per-sample view of an actor-layout batch (what the actor slices into micro-batches)."""
    return {k: batch[k].reshape(N * M, *batch[k].shape[2:]) for k in keys if k in batch}


def forward(model, method, micro: dict, replay: dict | None = None):
    """What the actor does: concatenate the replay half, one forward, split, add the method's batch keys."""
    inputs = {k: micro[k] for k in MODEL_KEYS}
    size = inputs["input_ids"].shape[0]
    if replay is not None:
        for key in MODEL_KEYS:
            extra = replay[key].to(inputs[key].dtype).reshape(-1, *inputs[key].shape[1:])
            inputs[key] = torch.cat([inputs[key], extra])
    out = base_module(model).action_logprobs(*(inputs[k] for k in MODEL_KEYS))
    rl_out = {**{k: v[:size] for k, v in out.items()}, **{k: micro[k] for k in method.batch_keys if k in micro}}
    replay_out = None if replay is None else {**replay, **{k: v[size:] for k, v in out.items()}}
    return rl_out, replay_out


def finished_stage(cfg, processor, out_dir):
    """One stage: observe a rollout, finish the task (B_old + critics written to out_dir/crl_vla)."""
    model, method = setup(cfg)
    batch = rollout_batch(processor)
    extra = method.observe_rollout(batch)
    batch.update(extra)
    record = method.finish_task(model, out_dir, is_rank0=True)
    return model, method, batch, record


# ------------------------------------------------------------------------------------------------ config
def test_registry_defaults_and_chaining(crl_tiny_dir):
    method = build_method(make_cfg(crl_tiny_dir))
    assert isinstance(method, CRLVLA) and method.name == "crl_vla"
    assert (method.alpha, method.beta, method.eta) == (1.0e-5, 1.0e-3, 1.0)
    assert method.target_kl == 0.02 and method.gamma == 0.99 and method.temperature == 1.6
    assert build_method(make_cfg(crl_tiny_dir, "crl.critic=q")).beta == 1.0e-2
    assert build_method(make_cfg(crl_tiny_dir, "crl.target_kl=null")).target_kl is None
    with pytest.raises(MethodConfigError, match="critic"):
        build_method(make_cfg(crl_tiny_dir, "crl.critic=w"))
    history = [StageRecord(0, [0], "r0", "r0/actor", {"crl_vla_dir": "r0/crl_vla"})]
    assert method.train_overrides(0, []) == {}
    assert method.train_overrides(1, history) == {"actor.model.lora_path": "r0/actor",
                                                  "crl.previous_state_dir": "r0/crl_vla"}  # fmt: skip
    with pytest.raises(MethodConfigError, match="state dir"):
        method.train_overrides(1, [StageRecord(0, [0], "r0", "r0/actor")])


def test_param_groups_give_the_mc_critic_its_lr(crl_tiny_dir):
    cfg = make_cfg(crl_tiny_dir, "crl.critic_lr=0.5")
    model, method = setup(cfg)
    groups = method.param_groups(model, cfg["actor"]["optim"])
    by_name = {g["name"]: g for g in groups}
    critic = {id(p) for p in method.critics.mc.parameters()}
    assert {id(p) for p in by_name["crl_vla_critic"]["params"]} == critic and by_name["crl_vla_critic"]["lr"] == 0.5
    assert by_name["policy"]["lr"] == cfg["actor"]["optim"]["lr"]
    assert not any(id(p) in critic for p in by_name["policy"]["params"])
    assert all(not p.requires_grad for p in method.critics.frozen.parameters())


# ------------------------------------------------------------------------------------------------ GCVF
def test_gcvf_value_depends_on_the_instruction(crl_tiny_dir, processor):
    """Same image, two instructions → two values (and the same instruction twice → the same value)."""
    for kind in ("v", "q"):
        model, method = setup(make_cfg(crl_tiny_dir, f"crl.critic={kind}"))
        image = torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
        inputs = processor([INSTRUCTIONS[0], INSTRUCTIONS[1], INSTRUCTIONS[0]], image.expand(3, -1, -1, -1))
        tokens = torch.full((3, 56), 31900)
        with torch.no_grad():
            base_module(model)(inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"])
            goal = method.tap.goal_embedding(inputs["input_ids"], inputs["attention_mask"])
            values = method.critic_values("mc", inputs["input_ids"], inputs["attention_mask"], tokens)
        assert values.shape == (3,)
        assert not torch.allclose(goal[0], goal[1]) and torch.equal(goal[0], goal[2])
        assert abs(float(values[0] - values[1])) > 1e-6, kind
        torch.testing.assert_close(values[0], values[2])


def test_gcvf_critic_module_reads_the_goal_and_action():
    torch.manual_seed(0)
    critic = GoalConditionedCritic(4, 3, action_dim=2, hidden=8)
    state, goal = torch.randn(1, 4).expand(2, 4), torch.randn(2, 3)
    action = torch.zeros(2, 2)
    values = critic(state, goal, action)
    assert values.shape == (2,) and values[0] != values[1]
    assert critic(state[:1], goal[:1], torch.ones(1, 2)) != values[0]
    with pytest.raises(ValueError, match="action"):
        critic(state, goal)


def test_instruction_mask_and_action_encoding():
    ids = torch.tensor([[1, 32000, 32000, 512, 513, 29871]])
    mask = torch.tensor([[True, False, False, True, True, True]])
    assert instruction_mask(ids, mask).tolist() == [[False, False, False, True, True, False]]
    tokenizer = ActionTokenizer.from_norm_stats({"x": {"action": {"q01": [0.0] * 7, "q99": [1.0] * 7}}}, "x")
    tokens = torch.randint(31744, 32000, (3, 8, 7))
    expected = tokenizer.tokens_to_normalized(tokens).reshape(3, 56).float()
    torch.testing.assert_close(tokens_to_normalized_actions(tokens, ActionVocabulary(31744, 32000)), expected)


# ------------------------------------------------------------------------------------------------ dual critic
def test_ppo_values_come_from_the_mc_critic(crl_tiny_dir, processor):
    """With PPO the rollout records V_MC for GAE and the PPO loss sees the same V_MC, detached."""
    model, method = setup(make_cfg(crl_tiny_dir, "algorithm=ppo"))
    micro = micro_from(rollout_batch(processor), [*MODEL_KEYS, *method.batch_keys])
    policy = base_module(model)
    with torch.no_grad():
        prediction = policy.predict_action_batch(micro["input_ids"], micro["attention_mask"], micro["pixel_values"])
        recorded = method.rollout_values(micro, prediction.action_tokens)
        expected = method.critic_values("mc", micro["input_ids"], micro["attention_mask"])
    assert recorded.shape == (N * M, 1) and torch.allclose(recorded[:, 0], expected)
    out, _ = forward(model, method, {**micro, "action_tokens": prediction.action_tokens})
    values = method.policy_values(out)
    assert values.shape == (N * M, 1) and not values.requires_grad
    torch.testing.assert_close(values, recorded, atol=1e-5, rtol=1e-5)  # same weights, same inputs


def test_frozen_critic_gets_no_gradient_and_is_copied_exactly(crl_tiny_dir, processor, tmp_path):
    cfg = make_cfg(crl_tiny_dir)
    model, method = setup(cfg)
    assert getattr(base_module(model), CRITICS_ATTR) is method.critics
    micro = micro_from(rollout_batch(processor), MODEL_KEYS)
    out, _ = forward(model, method, micro)
    frozen = method.critic_values("frozen", micro["input_ids"], micro["attention_mask"])
    (frozen - 1.0).square().mean().backward()
    assert all(p.grad is None and not p.requires_grad for p in method.critics.frozen.parameters())
    assert all(p.grad is None for p in method.critics.mc.parameters())  # the anchor reaches only the backbone
    lora_grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n and "layers.0" in n]
    assert lora_grads and any(g is not None and g.abs().sum() > 0 for g in lora_grads)

    with torch.no_grad():  # the MC critic has trained away from its copy
        for p in method.critics.mc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    trained = {n: p.detach().clone() for n, p in method.critics.mc.named_parameters()}
    assert any(not torch.equal(trained[n], p) for n, p in method.critics.frozen.named_parameters())
    method.observe_rollout(rollout_batch(processor))
    method.finish_task(model, tmp_path, is_rank0=True)
    for name, param in method.critics.frozen.named_parameters():
        assert torch.equal(param, trained[name]) and not param.requires_grad
    saved = torch.load(tmp_path / "crl_vla" / "critics.pt", weights_only=True)
    assert saved["kind"] == "v" and all(torch.equal(saved["frozen"][n], t) for n, t in trained.items())


# ------------------------------------------------------------------------------------------------ losses
def test_kl_old_hand_computed():
    old = torch.tensor([[[0.0, 0.0]]])  # p_old = (1/2, 1/2)
    new = torch.tensor([[[0.0, math.log(3.0)]]])  # p = (1/4, 3/4)
    expected = 0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0)
    assert float(L.kl_old(old, new)) == pytest.approx(expected, rel=1e-6)
    # temperature 2: p = softmax((0, ln 9)/2) = (1/4, 3/4) again
    assert float(L.kl_old(old, torch.tensor([[[0.0, math.log(9.0)]]]), temperature=2.0)) == pytest.approx(expected)
    two = torch.cat([old, old]), torch.cat([new, old])
    assert float(L.kl_old(*two)) == pytest.approx(expected / 2, rel=1e-6)
    assert float(L.kl_old(*two, mask=torch.tensor([[True], [False]]))) == pytest.approx(expected, rel=1e-6)
    assert float(L.kl_old(new, new)) == 0.0


def test_value_and_mc_losses_hand_computed():
    assert float(L.value_anchor_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 0.0]))) == pytest.approx(
        13.0 / 3.0
    )
    values, returns = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 5.0])
    assert float(L.mc_value_loss(values, returns)) == pytest.approx(5.0 / 3.0)
    assert float(L.mc_value_loss(values, returns, torch.tensor([True, True, False]))) == pytest.approx(0.5)
    assert float(L.value_anchor_loss(torch.zeros(0), torch.zeros(0))) == 0.0


def test_mc_returns_hand_computed():
    gamma = 0.9
    rewards = torch.zeros(3, 2, 2)
    rewards[1, 0, 1] = 5.0  # column 0: success in chunk 1, done after it
    rewards[0, 1, 0], rewards[2, 1, 1] = 1.0, 2.0  # column 1: no done (cut by the rollout end)
    dones = torch.zeros(4, 2, 2, dtype=torch.bool)
    dones[2, 0, 1] = True
    dones[3, 0, :] = True
    returns = L.mc_returns(rewards, dones, gamma)
    assert returns.shape == (3, 2, 1)
    torch.testing.assert_close(returns[:, 0, 0], torch.tensor([gamma * 5.0, 5.0, 0.0]))
    torch.testing.assert_close(returns[:, 1, 0], torch.tensor([1.0 + gamma**2 * 2.0, gamma * 2.0, 2.0]))


def test_advantage_magnitude_kl_estimate_and_early_stop():
    adv = torch.tensor([[-3.0, 1.0], [2.0, 10.0]])
    assert L.max_abs_advantage(adv) == 10.0
    assert L.max_abs_advantage(adv, torch.tensor([[True, True], [True, False]])) == 3.0
    assert L.max_abs_advantage(adv, torch.zeros(2, 2, dtype=torch.bool)) == 0.0
    new, old = torch.tensor([[-1.0, -2.0, -7.0]]), torch.tensor([[-1.5, -1.0, 0.0]])
    assert float(L.approx_kl(new, old, torch.tensor([[True, True, False]]))) == pytest.approx(0.25)
    assert L.kl_early_stop(0.03, 0.02) and not L.kl_early_stop(0.01, 0.02) and not L.kl_early_stop(1.0, None)


def test_method_terms_match_hand_computation_and_kl_is_zero_for_unchanged_policy(crl_tiny_dir, processor, tmp_path):
    """Stage 0 records B_old; with the policy unchanged, KL(π_old‖π) = 0 and the anchor = 0 on B_old rows; each
    returned term equals its weight × the hand-computed loss; a changed lm_head makes the KL positive."""
    cfg = make_cfg(crl_tiny_dir, "crl.alpha=0.5", "crl.beta_v=0.25", "crl.eta=2.0", "crl.kl_temperature=1.0")
    model, method, batch, _ = finished_stage(cfg, processor, tmp_path)
    assert len(method.buffer) == 3 and method.buffer.tasks == [0]
    micro = micro_from(batch, [*MODEL_KEYS, *method.batch_keys])
    replay = method.replay_batch()
    assert replay["input_ids"].shape == (2, 128) and replay["old_logits"].shape == (2, 56, 256)
    out, replay_out = forward(model, method, micro, replay)
    terms = method.extra_losses(model, out, replay_out)
    metrics = method.pop_metrics()
    assert sorted(terms) == ["crl_vla_anchor", "crl_vla_kl", "crl_vla_mc"]
    assert abs(float(terms["crl_vla_kl"].detach())) < 1e-6 and metrics["crl_vla/kl_old"] < 1e-6
    assert float(terms["crl_vla_anchor"].detach()) < 1e-8

    with torch.no_grad():  # hand computation of the MC term and M_new on the valid rows
        v = method.critic_values("mc", micro["input_ids"], micro["attention_mask"], rows=slice(0, N * M))
    returns, valid = micro["crl_returns"].reshape(-1), micro["crl_mask"].reshape(-1)
    assert returns.tolist() == pytest.approx([0.99 * 5.0, 0.0, 5.0, 0.0]) and valid.tolist() == [True, True, True, True]
    expected_mc = ((v - returns)[valid] ** 2).mean()
    torch.testing.assert_close(terms["crl_vla_mc"].detach(), 2.0 * expected_mc, rtol=1e-5, atol=1e-7)
    assert metrics["crl_vla/m_new_max"] == pytest.approx(float((returns - v)[valid].abs().max()), rel=1e-5)
    old_v = method.critic_values(
        "frozen", replay["input_ids"], replay["attention_mask"], rows=slice(N * M, None)
    ).detach()
    assert metrics["crl_vla/m_old_max"] == pytest.approx(float((replay["returns"] - old_v).abs().max()), rel=1e-5)
    assert metrics["crl_vla/b_old_size"] == 3.0 and "crl_vla/approx_kl" in metrics

    with torch.no_grad():  # change the policy's action head: KL > 0, and it matches kl_old by hand
        for name, param in model.named_parameters():
            if "lm_head" in name and "lora_B" in name:
                param.add_(0.5 * torch.randn(param.shape, generator=torch.Generator().manual_seed(5)))
    out, replay_out = forward(model, method, micro, replay)
    terms = method.extra_losses(model, out, replay_out)
    expected_kl = L.kl_old(replay["old_logits"], replay_out["processed_logits"])
    assert float(expected_kl.detach()) > 1e-4
    torch.testing.assert_close(terms["crl_vla_kl"].detach(), 0.5 * expected_kl.detach())
    total = sum(terms.values())
    total.backward()
    assert all(p.grad is None for p in method.critics.frozen.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.critics.mc.parameters())


def _perturb(module: torch.nn.Module, pattern: str, scale: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if pattern in name:
                param.add_(scale * torch.randn(param.shape, generator=gen))


def test_every_boundary_relabels_all_of_b_old_with_the_current_policy_and_frozen_head(crl_tiny_dir, processor,
                                                                                       tmp_path):  # fmt: skip
    """Algorithm 1: π_old = the policy at the end of the previous task, for old tasks' rows too, and V_old comes
    from the frozen head the anchor uses. After a second boundary (policy and MC critic changed since the first),
    task 0's rows carry the new targets, so KL(π_old‖π) and the anchor are 0 on every B_old row when the next
    task starts. (Keeping each task's own boundary targets left an anchor MSE of 1.0 and KL 1.4 at the first step
    of a probe stage; fails with the relabel removed.)"""
    cfg = make_cfg(crl_tiny_dir, "crl.b_old_batch_size=6", "crl.kl_temperature=1.0")
    model, method, _, _ = finished_stage(cfg, processor, tmp_path / "s0")
    first_logits = method.buffer.parts[0]["old_logits"].clone()
    _perturb(model, "lora_B", 0.5, seed=5)
    _perturb(method.critics.mc, "", 0.5, seed=6)
    method.cfg = {**method.cfg, "env": {**method.cfg["env"], "fixed_task_ids": [1]}}
    batch = rollout_batch(processor, seed=1)
    batch.update(method.observe_rollout(batch))
    method.finish_task(model, tmp_path / "s1", is_rank0=True)
    assert method.buffer.tasks == [0, 1] and len(method.buffer) == 6
    assert not torch.allclose(method.buffer.parts[0]["old_logits"], first_logits)  # task 0 relabelled
    replay = method.buffer.all_samples()
    micro = micro_from(batch, [*MODEL_KEYS, *method.batch_keys])
    out, replay_out = forward(model, method, micro, replay)
    method.extra_losses(model, out, replay_out)
    metrics = method.pop_metrics()
    assert metrics["crl_vla/kl_old"] < 1e-5 and metrics["crl_vla/anchor_mse"] < 1e-8, metrics
    restored = OldTaskBuffer.load(tmp_path / "s1" / "crl_vla" / "b_old_rank0.pt")
    assert all(torch.equal(restored.parts[0][k], method.buffer.parts[0][k]) for k in BUFFER_KEYS)


def test_old_task_terms_wait_for_an_rl_loss(crl_tiny_dir, processor, tmp_path):
    """A global step whose GRPO groups are all filtered (loss mask all False on every rank) has an RL gradient of
    exactly 0; the old-task terms are then not applied (AdamW would turn their tiny gradient into full-lr steps),
    so the backbone LoRA gets no gradient at all under GRPO; with ``crl.old_terms_need_rl=false`` they are."""
    for need_rl, expect_grad in ((True, False), (False, True)):
        cfg = make_cfg(crl_tiny_dir, f"crl.old_terms_need_rl={need_rl}")
        model, method, batch, _ = finished_stage(cfg, processor, tmp_path / str(need_rl))
        _perturb(model, "lora_B", 0.5, seed=5)  # the policy has drifted: KL and anchor > 0
        batch.update(method.observe_rollout({**batch, "loss_mask": torch.zeros_like(batch["loss_mask"])}))
        micro = micro_from(batch, [*MODEL_KEYS, *method.batch_keys])
        out, replay_out = forward(model, method, micro, method.replay_batch())
        terms = method.extra_losses(model, out, replay_out)
        metrics = method.pop_metrics()
        assert metrics["crl_vla/kl_old"] > 1e-4 and metrics["crl_vla/old_terms_on"] == float(expect_grad)
        (terms["crl_vla_kl"] + terms["crl_vla_anchor"] + terms["crl_vla_mc"]).backward()
        lora = [p.grad for n, p in model.named_parameters() if "lora_" in n]
        assert any(g is not None and g.abs().sum() > 0 for g in lora) == expect_grad, need_rl
    batch.update(method.observe_rollout(batch))  # a kept group somewhere: the terms are back
    out, replay_out = forward(model, method, micro_from(batch, [*MODEL_KEYS, *method.batch_keys]),
                              method.replay_batch())  # fmt: skip
    method.extra_losses(model, out, replay_out)
    assert method.pop_metrics()["crl_vla/old_terms_on"] == 1.0


def test_first_stage_has_no_replay_and_zero_old_terms(crl_tiny_dir, processor):
    model, method = setup(make_cfg(crl_tiny_dir))
    batch = rollout_batch(processor)
    batch.update(method.observe_rollout(batch))
    assert method.replay_batch() is None
    out, _ = forward(model, method, micro_from(batch, [*MODEL_KEYS, *method.batch_keys]))
    terms = method.extra_losses(model, out, None)
    assert float(terms["crl_vla_kl"].detach()) == 0.0 and float(terms["crl_vla_anchor"].detach()) == 0.0
    assert float(terms["crl_vla_mc"].detach()) > 0.0
    with pytest.raises(KeyError, match="batch_keys"):
        method.extra_losses(model, {k: v for k, v in out.items() if k != "crl_returns"}, None)


@pytest.mark.parametrize(("overrides", "backbone"), [
    ((), False), (("algorithm=ppo",), True), (("crl.mc_backbone_grad=true",), True),
])  # fmt: skip
def test_mc_loss_reaches_the_backbone_only_when_v_mc_is_the_baseline(crl_tiny_dir, processor, overrides, backbone):
    """GRPO (auto): L_MC trains the MC head alone; PPO/GAE or an explicit true: the backbone LoRA too."""
    model, method = setup(make_cfg(crl_tiny_dir, *overrides))
    batch = rollout_batch(processor)
    batch.update(method.observe_rollout(batch))
    out, _ = forward(model, method, micro_from(batch, [*MODEL_KEYS, *method.batch_keys]))
    method.extra_losses(model, out, None)["crl_vla_mc"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.critics.mc.parameters())
    lora = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert lora and any(g is not None and g.abs().sum() > 0 for g in lora) == backbone


def test_mc_backbone_grad_rejects_a_non_boolean(crl_tiny_dir):
    with pytest.raises(MethodConfigError, match="mc_backbone_grad"):
        build_method(make_cfg(crl_tiny_dir, "crl.mc_backbone_grad=maybe"))


# ------------------------------------------------------------------------------------------------ B_old
def _rows(n: int, start: float = 0.0) -> dict[str, torch.Tensor]:
    base = torch.arange(n, dtype=torch.float32) + start
    return {
        "input_ids": base.long().unsqueeze(-1).repeat(1, 4),
        "attention_mask": torch.ones(n, 4, dtype=torch.bool),
        "pixel_values": base.view(n, 1, 1, 1, 1).expand(n, 1, 6, 2, 2).clone(),
        "action_tokens": torch.full((n, C, D), 31744),
        "returns": base,
        "old_logits": base.view(n, 1, 1).repeat(1, 56, 256),
        "old_values": -base,
    }


def test_old_task_buffer_capacity_sampling_and_round_trip(tmp_path):
    buffer = OldTaskBuffer(capacity=6)
    buffer.add_task(3, _rows(4))
    buffer.add_task(5, _rows(4, start=100.0))
    assert buffer.task_counts() == {3: 3, 5: 3} and len(buffer) == 6  # equal shares of the capacity
    flat = buffer.all_samples()
    assert flat["task_id"].tolist() == [3, 3, 3, 5, 5, 5] and set(flat) == {*BUFFER_KEYS, "task_id"}
    batch = buffer.sample(4, torch.Generator().manual_seed(0))
    assert batch["input_ids"].shape == (4, 4) and len(set(batch["returns"].tolist())) == 4
    restored = OldTaskBuffer.load(buffer.save(tmp_path / "b_old.pt"))
    assert restored.tasks == buffer.tasks and restored.capacity == 6
    for mine, theirs in zip(buffer.parts, restored.parts):
        assert sorted(mine) == sorted(theirs) and all(torch.equal(mine[k], theirs[k]) for k in mine)
    shards = [buffer.shard(r, 2) for r in range(2)]
    merged = OldTaskBuffer.merge(shards)
    assert sorted(merged.all_samples()["returns"].tolist()) == sorted(flat["returns"].tolist())
    assert OldTaskBuffer().sample(2) is None


def test_reservoir_keeps_a_bounded_uniform_subset():
    reservoir = Reservoir(3, seed=0)
    rows = {"x": torch.arange(10).float().unsqueeze(-1)}
    reservoir.offer(rows, torch.tensor([0, 2, 4]))
    assert reservoir.data["x"].squeeze(-1).tolist() == [0.0, 2.0, 4.0]
    reservoir.offer(rows, torch.tensor([6, 8]))
    assert len(reservoir) == 3 and reservoir.seen == 5
    assert set(reservoir.data["x"].squeeze(-1).tolist()) <= {0.0, 2.0, 4.0, 6.0, 8.0}
    counts = torch.zeros(20)
    for seed in range(400):
        r = Reservoir(5, seed=seed)
        for start in range(0, 20, 4):
            r.offer({"x": torch.arange(start, start + 4)})
        counts[r.samples()["x"]] += 1
    assert counts.sum() == 2000 and counts.min() > 60 and counts.max() < 140  # each row kept ~ 5/20 of the time


def test_b_old_and_critics_restore_in_the_next_stage(crl_tiny_dir, processor, tmp_path):
    cfg = make_cfg(crl_tiny_dir, "crl.reset_mc_critic=false")
    _, first, _, record = finished_stage(cfg, processor, tmp_path)
    assert record == {"crl_vla_dir": str(tmp_path / "crl_vla"), "b_old_size": 3}
    assert (tmp_path / "crl_vla" / "b_old_rank0.pt").is_file()
    history = [StageRecord(0, [0], str(tmp_path), str(tmp_path / "actor"), record)]
    overrides = first.train_overrides(1, history)
    second_cfg = {**cfg, "crl": {**cfg["crl"], "previous_state_dir": overrides["crl.previous_state_dir"]}}
    _, second = setup(second_cfg)
    assert second.buffer.tasks == first.buffer.tasks
    for key in BUFFER_KEYS:
        assert torch.equal(second.buffer.parts[0][key], first.buffer.parts[0][key]), key
    for head in ("mc", "frozen"):
        for (name, mine), theirs in zip(getattr(first.critics, head).named_parameters(),
                                        getattr(second.critics, head).parameters()):  # fmt: skip
            assert torch.equal(mine, theirs), (head, name)
    fresh_cfg = {**second_cfg, "crl": {**second_cfg["crl"], "reset_mc_critic": True, "sample_seed": 99}}
    _, fresh = setup(fresh_cfg)
    assert all(torch.equal(a, b) for a, b in zip(fresh.critics.frozen.parameters(), first.critics.frozen.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(fresh.critics.mc.parameters(), first.critics.mc.parameters()))
    with pytest.raises(MethodConfigError, match="kind"):
        setup({**second_cfg, "crl": {**second_cfg["crl"], "critic": "q"}})


def test_kl_early_stop_flag(crl_tiny_dir, processor):
    model, method = setup(make_cfg(crl_tiny_dir, "crl.target_kl=0.1"))
    batch = rollout_batch(processor)
    batch.update(method.observe_rollout(batch))
    micro = micro_from(batch, [*MODEL_KEYS, *method.batch_keys])
    out, _ = forward(model, method, micro)
    out = {**out, "prev_logprobs": out["logprobs"].detach()}  # behaviour = current policy: KL 0
    method.extra_losses(model, out, None)
    method.after_optimizer_step(model, False)
    assert not method.stop_update()
    method.extra_losses(model, {**out, "prev_logprobs": out["logprobs"].detach() + 1.0}, None)  # KL estimate 1
    assert method.pop_metrics()["crl_vla/approx_kl"] == pytest.approx(1.0, rel=1e-5)
    method.after_optimizer_step(model, False)
    assert method.stop_update()
    method.observe_rollout(rollout_batch(processor))  # the next global step starts a new window
    assert not method.stop_update()


# ------------------------------------------------------------------------------------------------ FSDP2
def _fsdp_rank(rank: int, world: int, port: int, job: dict) -> None:
    """One gloo rank: shard the tiny policy as the actor does, train one micro-batch, finish the task, then run
    a micro-batch with a B_old half through the sharded model."""
    from pathlib import Path

    import torch.distributed as dist

    from vlacrl.crl.ewc import full_tensor
    from vlacrl.distributed import torch_dist
    from vlacrl.workers.actor_worker import build_optimizer

    torch_dist.init_process_group(rank, world, "127.0.0.1", port, False)
    try:
        torch.manual_seed(0)
        cfg = make_cfg(job["tiny"])
        model, method = setup(cfg)
        torch_dist.shard(base_module(model), use_gpu=False)
        optimizer = build_optimizer(model, cfg["actor"]["optim"], method)
        batch = rollout_batch(OpenVLAOFTProcessor.from_model_dir(job["tiny"]), seed=rank)
        batch.update(method.observe_rollout(batch))
        micro = micro_from(batch, [*MODEL_KEYS, *method.batch_keys])
        out, _ = forward(model, method, micro, method.replay_batch())
        sum(method.extra_losses(model, out, None).values()).backward()
        optimizer.step()
        record = method.finish_task(model, Path(job["out"]), rank == 0)
        heads = [{n: full_tensor(p.detach()) for n, p in h.named_parameters()} for h in method.critics.children()]
        out, replay = forward(model, method, micro, method.replay_batch())
        terms = method.extra_losses(model, out, replay)
        sum(terms.values()).backward()
        result = {"copied": all(torch.equal(heads[0][n], heads[1][n]) for n in heads[0]), "record": record,
                  "kl": float(terms["crl_vla_kl"].detach()), "b_old": len(method.buffer)}  # fmt: skip
        torch.save(result, Path(job["out"]) / f"result_{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_fsdp2_two_ranks(crl_tiny_dir, tmp_path):
    """The critics (own FSDP units), the feature tap and finish_task's collectives work on a sharded policy."""
    import torch.multiprocessing as mp

    from vlacrl.distributed.torch_dist import free_port

    job = {"tiny": str(crl_tiny_dir), "out": str(tmp_path)}
    mp.spawn(_fsdp_rank, args=(2, free_port(), job), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"result_{r}.pt", weights_only=False) for r in range(2)]
    assert all(r["copied"] and r["b_old"] == 3 and 0.0 <= r["kl"] < 1e-6 for r in results)
    assert sorted(p.name for p in (tmp_path / "crl_vla").iterdir()) == [
        "b_old_rank0.pt",
        "b_old_rank1.pt",
        "critics.pt",
    ]
    merged = OldTaskBuffer.merge([OldTaskBuffer.load(tmp_path / "crl_vla" / f"b_old_rank{r}.pt") for r in range(2)])
    assert merged.task_counts() == {0: 6}
