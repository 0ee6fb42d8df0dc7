"""The Simple CNN as an RL policy: the VLA batch keys, greedy bins, frozen BatchNorm/Dropout, a learning
signal through the GRPO loss, model.pt round trips, and clear errors for bad checkpoints."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from vlacrl.algorithms import AlgorithmConfig, compute_actor_loss
from vlacrl.config.compose import compose
from vlacrl.envs.libero import suites
from vlacrl.models.errors import CNNCheckpointError
from vlacrl.models.simple_cnn import bin_logprobs_and_entropy, decode_bins, load_checkpoint
from vlacrl.models.simple_cnn_rl import SimpleCNNProcessor, load_rl_policy, write_random_cnn_checkpoint

pytestmark = pytest.mark.libero  # the task-id map comes from the suite's instructions


@pytest.fixture(scope="module")
def cnn_ckpt(tmp_path_factory):
    return write_random_cnn_checkpoint(tmp_path_factory.mktemp("cnn") / "best_checkpoint.pt", seed=0)


@pytest.fixture(scope="module")
def languages():
    return [suites.task_spec("libero_spatial", i).language for i in range(10)]


def batch(policy, languages, ids=(3, 7), seed=0):
    frames = torch.randint(
        0, 256, (len(ids), 128, 128, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )
    processor = SimpleCNNProcessor(policy.meta["task_id_map"])
    return processor([languages[i] for i in ids], frames.numpy())


def test_processor_gives_task_ids_in_the_vla_keys(cnn_ckpt, languages):
    policy = load_rl_policy(cnn_ckpt)
    inputs = batch(policy, languages)
    ranks = sorted(languages)  # the supervised trainer numbers sorted instructions
    assert inputs["input_ids"].tolist() == [[ranks.index(languages[3])], [ranks.index(languages[7])]]
    assert inputs["attention_mask"].shape == (2, 1) and inputs["attention_mask"].all()
    assert inputs["pixel_values"].shape == (2, 3, 224, 224) and inputs["pixel_values"].dtype == torch.float32


def test_greedy_prediction_is_the_argmax_with_its_logprob(cnn_ckpt, languages):
    policy = load_rl_policy(cnn_ckpt).eval()
    inputs = batch(policy, languages)
    pred = policy.predict_action_batch(
        inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], greedy=True
    )
    with torch.no_grad():
        logits = policy(inputs["pixel_values"], inputs["input_ids"][:, 0])
    assert pred.action_tokens.shape == (2, 8, 7) and pred.actions.shape == (2, 8, 7)
    assert torch.equal(pred.action_tokens.reshape(2, 56), logits.argmax(-1))
    expected = torch.log_softmax(logits, -1).max(-1).values
    assert torch.allclose(pred.logprobs, expected)
    assert torch.allclose(pred.actions, decode_bins(pred.action_tokens, policy.action_tokenizer))
    sampled = policy.predict_action_batch(
        inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], greedy=False,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert not torch.equal(sampled.action_tokens, pred.action_tokens)  # 56 draws from near-uniform bins
    assert torch.allclose(sampled.logprobs, bin_logprobs_and_entropy(logits, sampled.action_tokens)[0])


def test_training_mode_keeps_batchnorm_and_dropout_frozen(cnn_ckpt, languages):
    policy = load_rl_policy(cnn_ckpt).eval()
    inputs = batch(policy, languages)
    pred = policy.predict_action_batch(inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"])
    policy.train()
    frozen = [m for m in policy.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Dropout))]
    assert frozen and not any(m.training for m in frozen) and policy.action_head[0].training
    stats = {k: v.clone() for k, v in policy.state_dict().items() if "running" in k}
    out = policy.action_logprobs(
        inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], pred.action_tokens
    )
    assert torch.allclose(out["logprobs"], pred.logprobs, atol=1e-6)  # ratio 1 before any update
    assert out["entropy"].shape == (2, 56) and out["processed_logits"].shape == (2, 56, 256)
    assert all(torch.equal(v, policy.state_dict()[k]) for k, v in stats.items())


def test_reference_training_mode_keeps_dropout_active(cnn_ckpt, languages):
    """``actor.model.cnn_train_dropout`` (the reference): BatchNorm frozen, Dropout active, so two forwards of
    the same batch differ and the log-probs no longer equal the rollout's."""
    from omegaconf import OmegaConf

    from vlacrl.config.compose import compose
    from vlacrl.workers.policy_setup import build_policy

    overrides = [f"actor.checkpoint_load_path={cnn_ckpt}", "actor.model.cnn_train_dropout=True"]
    cfg = OmegaConf.to_container(compose("cpu_simple_cnn", overrides), resolve=True)
    policy = build_policy(cfg, str(cnn_ckpt), use_gpu=False)
    assert policy.train_dropout and not load_rl_policy(cnn_ckpt).train_dropout
    policy.train()
    assert all(not m.training for m in policy.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(m.training for m in policy.modules() if isinstance(m, torch.nn.Dropout))
    inputs = batch(policy, languages)
    tokens = torch.zeros(2, 8, 7, dtype=torch.long)
    first, second = (policy.action_logprobs(inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"],
                                            tokens)["logprobs"] for _ in range(2))  # fmt: skip
    assert not torch.allclose(first, second)


def test_a_positive_advantage_raises_the_chosen_bins_logprob(cnn_ckpt, languages):
    cfg = OmegaConf.to_container(compose("cpu_simple_cnn", []), resolve=True)
    algo = AlgorithmConfig.from_mapping(cfg["algorithm"])
    policy = load_rl_policy(cnn_ckpt).train()
    inputs = batch(policy, languages)
    with torch.no_grad():
        pred = policy.predict_action_batch(inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"])
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    chunks = 8

    def logprob_sum():
        args = (inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], pred.action_tokens)
        return policy.action_logprobs(*args)["logprobs"]

    before = logprob_sum().detach()
    loss, _ = compute_actor_loss(
        algo, action_dim=7, max_episode_steps=16, logprobs=logprob_sum(), old_logprobs=pred.logprobs,
        entropy=torch.zeros(2, 56), advantages=torch.ones(2, chunks), returns=torch.zeros(2, chunks),
        loss_mask=torch.ones(2, chunks, dtype=torch.bool), loss_mask_sum=torch.full((2, chunks), float(chunks)),
        values=None, prev_values=torch.zeros(2, 1),
    )  # fmt: skip
    loss.backward()
    optimizer.step()
    assert (logprob_sum().detach().sum() - before.sum()) > 0


def test_model_pt_round_trip_and_bare_state_dicts(cnn_ckpt, tmp_path):
    policy = load_rl_policy(cnn_ckpt)
    with torch.no_grad():
        policy.action_head[-1].bias.add_(0.5)
    saved = policy.save(tmp_path / "actor" / "model.pt")
    again = load_rl_policy(saved)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in policy.state_dict().items())
    assert again.meta["task_id_map"] == policy.meta["task_id_map"] and again.unnorm_key == policy.unnorm_key
    bare = tmp_path / "bare.pt"
    torch.save(load_checkpoint(saved)[0].state_dict(), bare)  # the reference's RL model.pt format
    with pytest.raises(CNNCheckpointError, match="cnn_metadata_path"):
        load_rl_policy(bare)
    assert torch.equal(load_rl_policy(bare, str(cnn_ckpt)).action_head[-1].bias, policy.action_head[-1].bias)


def test_missing_or_unreadable_checkpoints_get_one_clear_error(tmp_path):
    with pytest.raises(CNNCheckpointError, match="vlacrl-train-simple-cnn"):
        load_rl_policy(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(CNNCheckpointError, match="cannot load Simple CNN checkpoint"):
        load_rl_policy(junk)
