"""FSDP2 on 2 gloo ranks gives the same loss, gradients and AdamW update as 1 rank on the same batch.

One synthetic rollout batch in the rollout worker's layout (E = 1 epoch, N = 2 chunk steps, b = 8 envs in
GRPO groups of G = 4, C = 8, D = 7) goes once through ``ActorWorker.train_step`` with 1 rank (all 8 env
columns) and once with 2 ranks (4 columns = one whole GRPO group each, since advantages are normalised per
group). ``actor.global_batch_size`` is the whole batch, so there is exactly one AdamW step and the shuffle
cannot change which samples form the mini-batch. Both runs are separate spawned processes (gloo on CPU), so
the test process never joins a process group.

Compared: every ``train/*`` and ``rollout/*`` metric except ``train/actor/policy_clipfrac`` (the reference
compares each token with its own micro-batch's scalar loss, so it depends on how the shuffle groups samples
into micro-batches), the full (unsharded, clipped) gradients read right after the step, and the trainable
weights before and after the step.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vlacrl.distributed.torch_dist import free_port

N_STEPS, NUM_ENVS, GROUP, CHUNK, ACTION_DIM = 2, 8, 4, 8, 7
TOKEN_BEGIN, VOCAB = 31744, 32000
INSTRUCTION = "pick up the black bowl between the plate and the ramekin and place it on the plate"
# (env, env step) of the successes: group 0 (envs 0-3) has one success, group 1 (envs 4-7) two, so the
# groups' advantage extremes differ (1.5 vs 0.87) and both groups are kept by the reward filter.
SUCCESSES = ((1, 4), (5, 9), (6, 13))
LR = 1e-3
CLIP = 0.05  # below the batch's gradient norm (about 0.11), so clipping by the global norm is active
SKIPPED_METRICS = ("train/actor/policy_clipfrac", "time/actor_training", "time/actor_forward", "time/actor_backward",
                   "time/actor_optimizer")  # fmt: skip


def _config(model_dir: Path) -> dict:
    from omegaconf import OmegaConf

    from vlacrl.config.compose import compose

    samples = N_STEPS * NUM_ENVS
    overrides = [
        f"actor.checkpoint_load_path={model_dir}",
        f"actor.global_batch_size={samples}",  # one mini-batch = one optimizer step on the whole batch
        "actor.micro_batch_size=2",  # 8 accumulation steps on 1 rank, 4 on each of 2 ranks
        f"actor.optim.lr={LR}",
        f"actor.optim.clip_grad={CLIP}",
        f"algorithm.group_size={GROUP}",
        "algorithm.rollout_epoch=1",
    ]
    cfg = OmegaConf.to_container(compose("cpu_tiny", overrides), resolve=True)
    assert cfg["env"]["train"]["max_episode_steps"] == N_STEPS * CHUNK
    assert not cfg["actor"]["model"]["gradient_checkpointing"]
    return cfg


def _rollout_batch(cfg: dict, model_dir: Path) -> dict[str, torch.Tensor]:
    """The rollout layout of ``RolloutWorker.collect`` for E = 1 (see its module docstring)."""
    from vlacrl.models.lora import base_module
    from vlacrl.models.openvla_oft import OpenVLAOFTProcessor
    from vlacrl.workers.policy_setup import build_policy

    generator = torch.Generator().manual_seed(0)
    samples = N_STEPS * NUM_ENVS
    images = torch.randint(0, 256, (samples, 256, 256, 3), dtype=torch.uint8, generator=generator)
    inputs = OpenVLAOFTProcessor.from_model_dir(model_dir)([INSTRUCTION] * samples, images)
    tokens = torch.randint(TOKEN_BEGIN, VOCAB, (samples, CHUNK, ACTION_DIM), generator=generator)
    # Old log-probs from the model at its initial weights (LoRA B = 0: the base model), shifted by at most
    # ±0.1 so that the ratios differ from 1 but stay inside the clip range [0.8, 1.28] (no clip kinks).
    policy = base_module(build_policy(cfg, str(model_dir), use_gpu=False)).eval()
    with torch.no_grad():
        logprobs = policy.action_logprobs(
            inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], tokens,
            temperature=float(cfg["algorithm"]["sampling_params"]["temperature_train"]),
        )["logprobs"].float()  # fmt: skip
    shift = (0.05 * torch.randn(logprobs.shape, generator=generator)).clamp(-0.1, 0.1)

    def steps(x: torch.Tensor) -> torch.Tensor:  # [N·b, …] → [N, b, …]
        return x.reshape(N_STEPS, NUM_ENVS, *x.shape[1:])

    rewards = torch.zeros(N_STEPS, NUM_ENVS, CHUNK)
    step_done = torch.zeros(N_STEPS * CHUNK, NUM_ENVS, dtype=torch.bool)  # done after env step s
    step_done[-1] = True  # truncation at max_episode_steps
    for env, step in SUCCESSES:
        rewards[step // CHUNK, env, step % CHUNK] = 5.0
        step_done[step:, env] = True
    dones = torch.cat([torch.zeros(1, CHUNK, NUM_ENVS, dtype=torch.bool), step_done.reshape(N_STEPS, CHUNK, -1)])
    return {
        "input_ids": steps(inputs["input_ids"]),
        "attention_mask": steps(inputs["attention_mask"].bool()),
        "pixel_values": steps(inputs["pixel_values"]),
        "action_tokens": steps(tokens),
        "prev_logprobs": steps(logprobs + shift),
        "prev_values": torch.zeros(N_STEPS + 1, NUM_ENVS, 1),
        "rewards": rewards,
        "dones": dones.transpose(1, 2).contiguous(),  # [N+1, C, b] → [N+1, b, C]
    }


def _run_rank(rank: int, world: int, port: int, job: dict) -> None:
    """One actor rank: setup, one ``train_step`` on this rank's env columns, gather grads and weights.

    ``job``: ``cfg`` (the workers' config dict), ``batch`` (the whole rollout batch), ``out_dir``.
    """
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    from vlacrl.workers.actor_worker import ActorWorker

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    worker = ActorWorker(job["cfg"], rank, world)
    worker.setup("127.0.0.1", port)
    trainable = {n: p for n, p in worker.model.named_parameters() if p.requires_grad}
    sharding = {
        "world_size": dist.get_world_size(),
        "all_dtensor": all(isinstance(p, DTensor) for p in worker.model.parameters()),
        "mesh_sizes": {p.device_mesh.size() for p in trainable.values()},
        "local_rows": sum(p.to_local().shape[0] for p in trainable.values()),
        "full_rows": sum(p.shape[0] for p in trainable.values()),
    }
    before = worker.trainable_state()
    width = NUM_ENVS // world  # whole GRPO groups per rank
    local = {k: v[:, rank * width : (rank + 1) * width].contiguous() for k, v in job["batch"].items()}
    metrics = worker.train_step(local)
    # Collective; the clipped gradients that the step left in .grad. Parameters the forward never reaches
    # (the ViTs' last block, SigLIP's attention pool: features come from the second-to-last layer) have none.
    grads = {n: p.grad.full_tensor() for n, p in trainable.items() if p.grad is not None}
    after = worker.trainable_state()
    result = {"sharding": sharding, "metrics": metrics}
    if rank == 0:
        result.update(before=before, after=after, grads=grads)
    torch.save(result, Path(job["out_dir"]) / f"world{world}_rank{rank}.pt")
    dist.destroy_process_group()


def _train(world: int, cfg: dict, batch: dict, out_dir: Path) -> list[dict]:
    import torch.multiprocessing as mp

    job = {"cfg": cfg, "batch": batch, "out_dir": str(out_dir)}
    mp.spawn(_run_rank, args=(world, free_port(), job), nprocs=world, join=True)
    return [torch.load(out_dir / f"world{world}_rank{r}.pt", weights_only=False) for r in range(world)]


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_gloo_ranks_match_one_rank(tmp_path):
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    model_dir = write_tiny_checkpoint(tmp_path / "tiny-openvla-oft")
    cfg = _config(model_dir)
    batch = _rollout_batch(cfg, model_dir)
    one = _train(1, cfg, batch, tmp_path)
    two = _train(2, cfg, batch, tmp_path)

    # The 2-rank run really is sharded: 2 ranks, DTensor parameters, each rank holding half the rows.
    for world, results in ((1, one), (2, two)):
        for info in (r["sharding"] for r in results):
            assert info["world_size"] == world and info["all_dtensor"] and info["mesh_sizes"] == {world}
        assert sum(r["sharding"]["local_rows"] for r in results) == results[0]["sharding"]["full_rows"]
    assert all(r["sharding"]["local_rows"] < r["sharding"]["full_rows"] for r in two)

    # Loss metrics (averaged across ranks by train_step) and rollout statistics agree.
    ref, got = one[0]["metrics"], two[0]["metrics"]
    keys = sorted(k for k in ref if k not in SKIPPED_METRICS)
    assert set(ref) == set(got) and all(two[1]["metrics"][k] == got[k] for k in keys)
    assert {"train/rl/loss", "train/actor/policy_loss", "train/actor/ppo_kl", "train/actor/grad_norm"} <= set(keys)
    for key in keys:
        assert got[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    assert abs(ref["train/rl/loss"]) > 1e-3 and ref["train/actor/grad_norm"] > 2 * CLIP
    assert ref["rollout/advantages_max"] == pytest.approx(1.5, rel=1e-5)  # group 0: scores (0, 5, 0, 0)
    assert ref["rollout/advantages_min"] == pytest.approx(-(3**0.5) / 2, rel=1e-5)  # group 1

    # Same initial weights; the same full gradients (as clipped to the global norm CLIP by the step).
    before, grads, grads_ref = two[0]["before"], two[0]["grads"], one[0]["grads"]
    assert set(grads) == set(grads_ref) and set(before) == set(one[0]["after"]) and set(grads) < set(before)
    assert all(name in grads for name in before if ".language_model." in name or ".projector." in name)
    assert _max_diff(one[0]["before"], before) == 0.0
    for results in (one, two):
        norm = sum(float(g.double().square().sum()) for g in results[0]["grads"].values()) ** 0.5
        assert norm == pytest.approx(CLIP, rel=1e-4)
    scale = max(float(g.abs().max()) for g in grads_ref.values())
    for name in grads_ref:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=1e-5 * scale, msg=name)

    # The same AdamW step, and it moved the weights. The first step is lr·g/(|g| + 1e-8) (+ weight decay):
    # where 0 < |g| < 1e-6 it magnifies float-level gradient differences, so there it agrees only coarsely.
    after, after_ref = two[0]["after"], one[0]["after"]
    assert max(float((after_ref[k] - before[k]).abs().max()) for k in before) > 0.5 * LR
    assert sum(int((g.abs() >= 1e-6).sum()) for g in grads_ref.values()) > 10_000
    for name in before:
        if name not in grads_ref:  # no gradient: AdamW leaves the parameter alone
            assert torch.equal(after[name], before[name]) and torch.equal(after_ref[name], before[name]), name
            continue
        firm = (grads_ref[name].abs() >= 1e-6) | (grads_ref[name] == 0)
        torch.testing.assert_close(after[name][firm], after_ref[name][firm], rtol=1e-5, atol=1e-5 * LR, msg=name)
        torch.testing.assert_close(after[name], after_ref[name], rtol=0, atol=0.2 * LR, msg=name)
