"""iRe-VLA (``crl=ire_vla``) on the tiny OpenVLA-OFT: Stage 1 trains only the selected parameters, D_RL holds
exactly the successful episodes, Stage 2 trains the backbone LoRA on demos ∪ D_RL, D_RL persists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from vlacrl.algorithms.masks import compute_loss_mask
from vlacrl.algorithms.replay_losses import action_token_cross_entropy
from vlacrl.cli.precompute_logits import main as precompute
from vlacrl.config.compose import compose
from vlacrl.crl.base import StageRecord
from vlacrl.crl.common import MethodConfigError
from vlacrl.crl.ire_vla import IReVLA
from vlacrl.crl.ire_vla.buffer import EPISODE_KEYS, SuccessBuffer, success_from_rewards
from vlacrl.crl.ire_vla.params import matches, select
from vlacrl.crl.ire_vla.stage2 import mixed_batch, split_counts, stage2_loss, stage2_step
from vlacrl.crl.registry import build_method
from vlacrl.data import ReplayDataError
from vlacrl.data.libero_hdf5 import write_libero_demo_file
from vlacrl.envs.libero import suites
from vlacrl.models.adapter_files import load_value_head
from vlacrl.models.lora import base_module
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor
from vlacrl.workers.actor_worker import build_optimizer
from vlacrl.workers.policy_setup import build_policy

N, M, C, D = 3, 4, 8, 7
BACKBONE_LORA = "language_model.model.layers.0.self_attn.q_proj.lora_B"


def make_cfg(tiny_dir, *extra: str) -> dict:
    overrides = [f"actor.checkpoint_load_path={tiny_dir}", "actor.model.lora_rank=4", "crl=ire_vla",
                 "algorithm.require_values=true", "crl.stage2_batch_size=4", "crl.stage2_in_finish_task=false",
                 *extra]  # fmt: skip
    return OmegaConf.to_container(compose("cpu_tiny", overrides), resolve=True)


def setup(cfg: dict):
    model = build_policy(cfg, str(cfg["actor"]["checkpoint_load_path"]), use_gpu=False)
    method = build_method(cfg)
    method.setup_actor(model)
    return model, method


@pytest.fixture(scope="module")
def processor(crl_tiny_dir):
    return OpenVLAOFTProcessor.from_model_dir(crl_tiny_dir)


def rollout_batch(processor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Actor layout [N=3, M=4]: column 1 succeeds in chunk 0, column 3 in chunk 2; columns 0 and 2 fail."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (N * M, 32, 32, 3), dtype=torch.uint8, generator=gen)
    inputs = processor(["put the bowl on the plate"] * (N * M), images)
    batch = {k: v.reshape(N, M, *v.shape[1:]) for k, v in inputs.items()}
    batch["action_tokens"] = torch.randint(31744, 32000, (N, M, C, D), generator=gen)
    rewards, dones = torch.zeros(N, M, C), torch.zeros(N + 1, M, C, dtype=torch.bool)
    rewards[0, 1, 2], dones[1, 1, 2:], dones[2:, 1] = 5.0, True, True
    rewards[2, 3, 6], dones[3, 3, 6:] = 5.0, True
    batch.update(rewards=rewards, dones=dones)
    batch["loss_mask"], batch["loss_mask_sum"] = compute_loss_mask(dones)
    return batch


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(before: dict, model) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


# ------------------------------------------------------------------------------------------------ config
def test_registry_defaults_and_stage_overrides(crl_tiny_dir):
    method = build_method(make_cfg(crl_tiny_dir, "crl.stage1_steps=7"))
    assert isinstance(method, IReVLA) and method.name == "ire_vla"
    assert method.stage1_patterns == [r"lm_head\.lora_", r"value_head\."] and method.stage2_patterns is None
    assert method.demo_fraction == 0.5 and method.stage2_steps == 200 and method.d_rl.max_samples == 4096
    assert method.stage_plan()["stage1"]["global_steps"] == 7
    assert method.train_overrides(0, []) == {"runner.max_epochs": 7, "crl.seen_task_ids": []}
    history = [StageRecord(0, [0], "r0", "r0/actor", {"d_rl_dir": "r0/ire_vla"})]
    assert method.train_overrides(1, history) == {"runner.max_epochs": 7, "crl.seen_task_ids": [0],
        "actor.model.lora_path": "r0/actor", "crl.previous_d_rl_dir": "r0/ire_vla"}  # fmt: skip
    history[0].extra["stage2_adapter_dir"] = "r0/stage2"
    assert method.train_overrides(1, history)["actor.model.lora_path"] == "r0/stage2"
    assert method.eval_overrides(history[0], [])["actor.model.lora_path"] == "r0/stage2"
    with pytest.raises(MethodConfigError, match="D_RL"):
        method.train_overrides(1, [StageRecord(0, [0], "r0", "r0/actor")])
    with pytest.raises(MethodConfigError, match="demo_fraction"):
        build_method(make_cfg(crl_tiny_dir, "crl.demo_fraction=1.5"))


def test_parameter_patterns():
    names = [
        "base_model.model.language_model.lm_head.lora_A.default.weight",
        "base_model.model.value_head.head_l1.bias",
        "base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_B.default.weight",
    ]
    assert select(names, [r"lm_head\.lora_", r"value_head\."]) == names[:2]
    assert select(names, None) == names and not matches(names[2], [r"lm_head"])


# ------------------------------------------------------------------------------------------------ Stage 1
def test_stage1_changes_only_the_allowed_parameters(crl_tiny_dir, processor):
    cfg = make_cfg(crl_tiny_dir)
    model, method = setup(cfg)
    allowed = set(method.stage1_names)
    assert allowed == {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lm_head.lora_B" in n for n in allowed) and any("value_head" in n for n in allowed)
    assert not any("layers." in n or "vision_backbone" in n for n in allowed)
    optimizer = build_optimizer(model, cfg["actor"]["optim"], method)
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {
        id(p) for n, p in model.named_parameters() if n in allowed
    }
    before = snapshot(model)
    batch = rollout_batch(processor)
    inputs = [batch[k].reshape(N * M, *batch[k].shape[2:])[:4] for k in (*EPISODE_KEYS[:3], "action_tokens")]
    out = base_module(model).action_logprobs(*inputs)
    (-out["logprobs"].mean() + out["values"].square().mean()).backward()
    optimizer.step()
    moved = changed(before, model)
    assert moved <= allowed and moved  # every other tensor bit-identical
    assert any("lm_head.lora_B" in n for n in moved) and any("value_head" in n for n in moved)
    with pytest.raises(MethodConfigError, match="matches no"):
        setup(make_cfg(crl_tiny_dir, "crl.stage1_trainable=[nothing_here]"))


# ------------------------------------------------------------------------------------------------ D_RL
def test_d_rl_holds_exactly_the_successful_episodes(crl_tiny_dir, processor, tmp_path):
    _, method = setup(make_cfg(crl_tiny_dir))
    batch = rollout_batch(processor)
    assert success_from_rewards(batch["rewards"], batch["loss_mask"]).tolist() == [False, True, False, True]
    assert method.observe_rollout(batch) == {}
    assert method.pop_metrics()["ire_vla/episodes_succeeded"] == 2.0
    d_rl = method.d_rl
    assert d_rl.num_episodes == 2 and d_rl.task_ids == [0, 0]
    for episode, (column, steps) in zip(d_rl.episodes, [(1, [0]), (3, [0, 1, 2])]):
        assert sorted(episode) == sorted(EPISODE_KEYS)
        for key in EPISODE_KEYS:
            assert torch.equal(episode[key], batch[key][steps, column]), (column, key)
    assert len(d_rl) == 4
    record = method.finish_task(None, tmp_path, is_rank0=True)
    assert record == {"d_rl_dir": str(tmp_path / "ire_vla"), "d_rl_episodes": 2}
    restored = SuccessBuffer.load(tmp_path / "ire_vla" / "d_rl_rank0.pt")
    assert restored.task_ids == d_rl.task_ids
    assert all(torch.equal(a[k], b[k]) for a, b in zip(restored.episodes, d_rl.episodes) for k in EPISODE_KEYS)
    _, later = setup(make_cfg(crl_tiny_dir, f"crl.previous_d_rl_dir={tmp_path / 'ire_vla'}"))
    assert later.d_rl.num_episodes == 2 and len(later.d_rl) == 4


def test_d_rl_keeps_successes_of_groups_the_grpo_filter_dropped(crl_tiny_dir, processor):
    """The actor's valid_mask (before the group filter) decides, not the filtered loss mask."""
    _, method = setup(make_cfg(crl_tiny_dir))
    batch = rollout_batch(processor)
    batch["valid_mask"] = batch["loss_mask"]
    batch["loss_mask"] = torch.zeros_like(batch["loss_mask"])  # every group filtered out of the RL loss
    method.observe_rollout(batch)
    assert method.d_rl.num_episodes == 2 and len(method.d_rl) == 4


def test_d_rl_cap_sampling_and_sharding(processor):
    batch = rollout_batch(processor)
    buffer = SuccessBuffer(max_samples=3, seed=0)
    buffer.add_episodes(batch, torch.tensor([False, True, False, True]))
    assert len(buffer) <= 3 and buffer.num_episodes == 1  # one whole episode evicted
    unbounded = SuccessBuffer()
    unbounded.add_episodes(batch, torch.tensor([True, True, True, True]))
    assert unbounded.num_episodes == 4 and len(unbounded) == 3 + 1 + 3 + 3  # valid steps only (loss mask)
    rows = unbounded.sample(5, torch.Generator().manual_seed(0))
    assert rows["input_ids"].shape == (5, 128) and rows["action_tokens"].shape == (5, C, D)
    shards = [unbounded.shard(r, 3) for r in range(3)]
    assert [s.num_episodes for s in shards] == [2, 1, 1]
    assert SuccessBuffer.merge(shards).num_episodes == 4 and SuccessBuffer().sample(2) is None


# ------------------------------------------------------------------------------------------------ Stage 2
def test_split_counts_and_mixed_batch(processor):
    assert split_counts(4, 0.5, True, True) == (2, 2) and split_counts(5, 0.5, True, True) == (2, 3)
    assert split_counts(4, 0.5, False, True) == (0, 4) and split_counts(4, 0.5, True, False) == (4, 0)
    assert split_counts(4, 0.5, False, False) == (0, 0)
    batch = rollout_batch(processor)
    part = {k: batch[k][0] for k in EPISODE_KEYS}
    mixed = mixed_batch(part, None, {k: v[:1] for k, v in part.items()})
    assert mixed["action_tokens"].shape == (M + 1, 56) and mixed["attention_mask"].dtype == torch.bool
    assert mixed_batch(None) == {}


def test_stage2_loss_is_the_action_token_cross_entropy():
    logits = torch.full((1, 2, 32064), -1.0e4)
    logits[0, :, 31744:32000] = 0.0
    logits[0, 0, 31744] = torch.log(torch.tensor(3.0 * 255))  # p(31744) = 3·255 / (3·255 + 255) = 3/4
    tokens = torch.tensor([[31744, 31745]])
    loss, accuracy = stage2_loss(logits, tokens, 31744, 32000)
    expected = (-torch.log(torch.tensor(0.75)) - torch.log(torch.tensor(1.0 / 256))) / 2
    torch.testing.assert_close(loss, expected)
    assert float(accuracy) == 0.5
    assert torch.equal(loss, action_token_cross_entropy(logits, tokens)[0])


def test_stage2_trains_the_backbone_lora(crl_tiny_dir, processor):
    model, method = setup(make_cfg(crl_tiny_dir, "crl.stage2_lr=1e-3"))
    batch = rollout_batch(processor)
    method.observe_rollout(batch)
    assert not dict(model.named_parameters())[f"base_model.model.{BACKBONE_LORA}.default.weight"].requires_grad
    demo = {k: batch[k].reshape(N * M, *batch[k].shape[2:])[:2] for k in EPISODE_KEYS}
    before = snapshot(model)
    history = method.consolidate(model, demos=iter([demo, demo]), steps=2)
    assert len(history) == 2 and history[0]["ire_vla/demo_rows"] == 2.0 and history[0]["ire_vla/d_rl_rows"] == 2.0
    assert all(h["ire_vla/batch_size"] == 4.0 and h["ire_vla/sft_loss"] > 0 for h in history)
    moved = changed(before, model)
    assert any(BACKBONE_LORA in n for n in moved) and any("vision_backbone" in n and "lora_B" in n for n in moved)
    assert any("lm_head.lora_B" in n for n in moved)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(method.universe)
    only_rl = method.consolidate(model, demos=None, steps=1)
    assert only_rl[0]["ire_vla/d_rl_rows"] == 4.0 and only_rl[0]["ire_vla/demo_rows"] == 0.0


def test_stage2_cross_entropy_is_under_the_sampling_temperature(crl_tiny_dir, processor):
    """D_RL's tokens were drawn from softmax(z / T): Stage 2 fits them under the same T (default temperature_train)."""
    model, method = setup(make_cfg(crl_tiny_dir, "crl.stage2_lr=1e-3"))
    assert method.stage2_temperature == 1.6
    assert build_method(make_cfg(crl_tiny_dir, "crl.stage2_temperature=1.0")).stage2_temperature == 1.0
    with pytest.raises(MethodConfigError, match="stage2_temperature"):
        build_method(make_cfg(crl_tiny_dir, "crl.stage2_temperature=-1"))
    batch = rollout_batch(processor)
    method.observe_rollout(batch)
    rows = mixed_batch(method.d_rl.sample(2))
    policy = base_module(model)
    with torch.no_grad():
        logits = policy(rows["input_ids"], rows["attention_mask"], rows["pixel_values"]).logits.float()
    tempered = stage2_loss(logits / 1.6, rows["action_tokens"], int(policy.token_begin), 32000)[0]
    untempered = stage2_loss(logits, rows["action_tokens"], int(policy.token_begin), 32000)[0]
    method.prepare_stage2(model)
    step = stage2_step(model, method.stage2_optimizer(model), rows, temperature=method.stage2_temperature)
    assert step["ire_vla/sft_loss"] == pytest.approx(float(tempered), rel=1e-4)
    assert abs(float(tempered) - float(untempered)) > 1e-3  # the check can tell the two apart


# ------------------------------------------------------------------------------------------------ in finish_task
@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, crl_tiny_dir):
    """Expert demos of libero_spatial task 0 in the replay layout (LIBERO demo file → vlacrl-precompute-logits)."""
    rng = np.random.default_rng(0)
    raw = tmp_path_factory.mktemp("demos")
    language = suites.task_spec("libero_spatial", 0).language
    actions = rng.uniform(-0.9, 0.9, (16, 7))
    frames = rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    write_libero_demo_file(raw / f"{language.replace(' ', '_')}_demo.hdf5", language, [(actions, frames)])
    out = tmp_path_factory.mktemp("cache") / "libero_spatial_simplevla"
    assert precompute(["--model-dir", str(crl_tiny_dir), "--input", str(raw), "--output-dir", str(out)]) == 0
    return out


def test_finish_task_runs_stage2_and_records_the_consolidated_adapter(crl_tiny_dir, processor, demo_dir, tmp_path):
    cfg = make_cfg(crl_tiny_dir, "crl.stage2_in_finish_task=true", "crl.stage2_steps=2", "crl.stage2_lr=1e-3",
                   f"crl.dataset_dir={demo_dir}")  # fmt: skip
    model, method = setup(cfg)
    method.observe_rollout(rollout_batch(processor))
    before = snapshot(model)
    record = method.finish_task(model, tmp_path, is_rank0=True)
    adapter = tmp_path / "ire_vla" / "stage2_adapter"
    assert record["stage2_adapter_dir"] == str(adapter) and record["d_rl_episodes"] == 2
    assert record["stage2_last_loss"] > 0 and (adapter / "value_head.safetensors").is_file()
    assert any(BACKBONE_LORA in n for n in changed(before, model))
    reloaded = build_policy(make_cfg(crl_tiny_dir, f"+actor.model.lora_path={adapter}"), str(crl_tiny_dir), False)
    assert load_value_head(reloaded, adapter)  # the actor loads the value head only on resume
    ours = dict(model.named_parameters())
    for name, param in reloaded.named_parameters():
        if "lora_" in name or "value_head" in name:
            assert torch.equal(param, ours[name]), name
    assert method.eval_overrides(StageRecord(0, [0], str(tmp_path), "rl/actor", record), [])[
        "actor.model.lora_path"
    ] == str(adapter)


def test_demo_tasks_trained_keeps_future_tasks_demos_out_of_stage2(crl_tiny_dir, demo_dir, tmp_path):
    """``crl.demo_tasks: trained``: D_e holds the earlier stages' and this stage's tasks only; ``all`` (the
    default) every task file of the directory."""
    (tmp_path / "demos").mkdir()
    for task in (0, 1, 2):
        name = suites.task_spec("libero_spatial", task).language.replace(" ", "_")
        (tmp_path / "demos" / f"{name}_demo.hdf5").symlink_to(next(demo_dir.glob("*.hdf5")))
    common = (f"crl.dataset_dir={tmp_path / 'demos'}", "env.fixed_task_ids=[1]", "crl.seen_task_ids=[0]")

    def tasks(*extra):
        files = build_method(make_cfg(crl_tiny_dir, *common, *extra)).demo_files()
        languages = [suites.task_spec("libero_spatial", t).language.replace(" ", "_") for t in (0, 1, 2)]
        return [t for t, language in enumerate(languages) if any(f.name.startswith(language) for f in files)]

    assert tasks() == [0, 1, 2]
    assert tasks("crl.demo_tasks=trained") == [0, 1]
    assert tasks("crl.demo_tasks=trained", "crl.seen_task_ids=[]") == [1]
    with pytest.raises(MethodConfigError, match="demo_tasks"):
        build_method(make_cfg(crl_tiny_dir, "crl.demo_tasks=seen"))


def test_missing_demo_files_fail_at_setup(crl_tiny_dir, tmp_path):
    cfg = make_cfg(crl_tiny_dir, "crl.stage2_in_finish_task=true", f"crl.dataset_dir={tmp_path / 'none'}")
    with pytest.raises(ReplayDataError, match="does not exist"):
        setup(cfg)


# ------------------------------------------------------------------------------------------------ FSDP2
def _fsdp_rank(rank: int, world: int, port: int, job: dict) -> None:
    """One gloo rank: Stage-1 freeze before sharding (as the actor), one RL step, then finish_task's Stage 2
    (requires_grad flipped on the sharded model) and the collective adapter write."""
    from pathlib import Path

    import torch.distributed as dist

    from vlacrl.crl.ewc import full_tensor
    from vlacrl.distributed import torch_dist

    torch_dist.init_process_group(rank, world, "127.0.0.1", port, False)
    try:
        torch.manual_seed(0)
        cfg = make_cfg(job["tiny"], "crl.stage2_in_finish_task=true", "crl.demo_fraction=0", "crl.stage2_steps=2",
                       "crl.stage2_lr=1e-3")  # fmt: skip
        model, method = setup(cfg)
        torch_dist.shard(base_module(model), use_gpu=False)
        optimizer = build_optimizer(model, cfg["actor"]["optim"], method)
        batch = rollout_batch(OpenVLAOFTProcessor.from_model_dir(job["tiny"]), seed=rank)
        inputs = [batch[k].reshape(N * M, *batch[k].shape[2:])[:2] for k in EPISODE_KEYS]
        out = base_module(model).action_logprobs(*inputs)
        (-out["logprobs"].mean() + out["values"].square().mean()).backward()
        optimizer.step()
        method.observe_rollout(batch)
        name = next(n for n, _ in model.named_parameters() if BACKBONE_LORA in n)
        before = full_tensor(dict(model.named_parameters())[name].detach()).clone()
        record = method.finish_task(model, Path(job["out"]), rank == 0)
        after = full_tensor(dict(model.named_parameters())[name].detach())
        torch.save({"record": record, "moved": not torch.equal(before, after), "after": after},
                   Path(job["out"]) / f"result_{rank}.pt")  # fmt: skip
    finally:
        dist.destroy_process_group()


def test_fsdp2_two_ranks_stage2_in_finish_task(crl_tiny_dir, tmp_path):
    import torch.multiprocessing as mp

    from vlacrl.distributed.torch_dist import free_port

    job = {"tiny": str(crl_tiny_dir), "out": str(tmp_path)}
    mp.spawn(_fsdp_rank, args=(2, free_port(), job), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"result_{r}.pt", weights_only=False) for r in range(2)]
    assert all(r["moved"] and r["record"]["d_rl_episodes"] == 2 for r in results)
    assert torch.equal(results[0]["after"], results[1]["after"])
    assert (tmp_path / "ire_vla" / "stage2_adapter" / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "ire_vla").glob("d_rl_rank*.pt")) == ["d_rl_rank0.pt", "d_rl_rank1.pt"]
