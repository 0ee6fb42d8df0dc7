"""OpenVLA-OFT policy step costs: parallel vs autoregressive decoding, and the actor's training step.

(a) Rollout latency: one forward that yields all 56 action tokens at once (the parallel decoding the
    reference uses) vs 56 autoregressive forwards on the same model, each over the growing sequence
    ``[BOS, patches, prompt, generated tokens…]`` without a KV cache. Reported as the ratio, both for full
    forwards (vision + LLM every step) and with the image features computed once (LLM-only steps). Also the
    autoregressive OpenVLA family's real rollout call on the same weights (``openvla_kv_cache_s``: 7 tokens with a
    KV cache = one action; OFT's parallel call gives 8 actions, so per env step compare it with parallel_s / 8).
(b) Actor step: LoRA (r = 32) + gradient checkpointing, forward + backward of the GRPO-style log-prob
    objective on one micro-batch; wall time and peak memory (CUDA: max allocated; CPU: peak RSS growth); for
    OpenVLA-OFT (56 tokens) and for OpenVLA (7 teacher-forced tokens, ``actor_step_openvla``).

Default: the tiny model on CPU. On CPU its vision towers dominate, so its decode ratio says little about 7B:
``--shape 7b-proportioned`` runs the 7B's real widths with 2 LLM blocks and 2 blocks per ViT
(``presets.proportioned_7b_config``; random float32 weights, batch 1 by default; minutes per repeat on 2 cores).
``--full`` (CUDA only) builds the whole 7B architecture with random bf16 weights and measures rollout batch 64
and a micro-batch-32 training step. Rollout timings alternate parallel / autoregressive / vision-once
``--repeats`` times (≥ 3; median, spread, load average, and a ratio only outside the noise: repeated.py).

Usage:  python benchmarks/model_step.py [--shape tiny|7b-proportioned] [--batch 8] [--micro-batch 8]
        [--repeats 3] [--full] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vlacrl.models.lora import add_lora  # noqa: E402
from vlacrl.models.openvla import OpenVLAPolicy  # noqa: E402
from vlacrl.models.openvla_oft import OpenVLAOFTConfig, OpenVLAOFTPolicy, load_policy, write_tiny_checkpoint  # noqa: E402
from vlacrl.models.openvla_oft.presets import openvla_7b_config  # noqa: E402

INSTRUCTION_TOKENS = 40  # a typical LIBERO prompt length (BOS + text + 29871)


def synthetic_batch(batch: int, device: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """[BOS, PAD…, prompt…, 29871] ids/mask of length 128 and random pixel values [B, 1, 6, 224, 224]."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.full((batch, 128), 32000, dtype=torch.long)
    ids[:, -INSTRUCTION_TOKENS + 1 :] = torch.randint(300, 29000, (batch, INSTRUCTION_TOKENS - 1), generator=generator)
    ids[:, 0], ids[:, -1] = 1, 29871
    mask = ids != 32000
    pixels = torch.randn(batch, 1, 6, 224, 224, generator=generator)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "pixel_values": pixels.to(device, dtype)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str, repeats: int) -> dict[str, float]:
    """Median and spread (max − min) of ``repeats`` timed calls of ``fn`` after one warm-up call (seconds)."""
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "spread": max(times) - min(times), "repeats": repeats}


@torch.no_grad()
def autoregressive_decode(
    policy: OpenVLAOFTPolicy, batch: dict[str, torch.Tensor], reuse_vision: bool = False
) -> torch.Tensor:
    """56 forwards, each appending the argmax action token of the last position; returns tokens [B, 56].

    ``reuse_vision=False``: every forward is a full model forward (vision + LLM), as generation without a
    cache does; ``True``: the image features are computed once and only the LLM runs 56 times.
    """
    ids, mask = batch["input_ids"], batch["attention_mask"].long()
    patches = policy.embed_images(batch["pixel_values"])
    embed = policy.language_model.get_input_embeddings()
    tokens = []
    for step in range(policy.num_action_tokens):
        if step > 0 and not reuse_vision:
            patches = policy.embed_images(batch["pixel_values"])
        text = embed(ids)
        embeds = torch.cat([text[:, :1], patches.to(text.dtype), text[:, 1:]], dim=1)
        full_mask = torch.cat([mask[:, :1], mask.new_ones(patches.shape[:2]), mask[:, 1:]], dim=1)
        hidden = policy.language_model.model(
            inputs_embeds=embeds, attention_mask=full_mask, position_ids=full_mask.cumsum(1) - 1
        ).last_hidden_state
        logits = policy.language_model.lm_head(hidden[:, -1])
        nxt = logits[:, policy.token_begin : policy.config.tokenizer_vocab_size].argmax(-1) + policy.token_begin
        tokens.append(nxt)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
    return torch.stack(tokens, dim=1)


def rollout_latency(policy: OpenVLAOFTPolicy, batch: dict, device: str, repeats: int) -> dict:
    """Parallel decode vs 56 autoregressive forwards (and with the vision features computed once), alternating,
    ``repeats`` rounds; medians, spreads and the ratios that the spread allows."""
    from repeated import measure_alternating, ratio, report

    def once(fn):
        def run() -> float:
            start = time.perf_counter()
            fn()
            _sync(device)
            return time.perf_counter() - start

        return run

    policy.predict_action_batch(**batch, greedy=True)  # warm-up
    openvla = as_openvla(policy)
    measured = measure_alternating({
        "parallel_s": once(lambda: policy.predict_action_batch(**batch, greedy=True)),
        "openvla_kv_cache_s": once(lambda: openvla.predict_action_batch(**batch, greedy=True)),
        "autoregressive_s": once(lambda: autoregressive_decode(policy, batch)),
        "autoregressive_vision_once_s": once(lambda: autoregressive_decode(policy, batch, reuse_vision=True)),
    }, repeats)  # fmt: skip
    results = measured["results"]
    out = report(measured)
    out["ratio"] = ratio(results["autoregressive_s"], results["parallel_s"])
    out["ratio_vision_once"] = ratio(results["autoregressive_vision_once_s"], results["parallel_s"])
    out["ratio_openvla_call"] = ratio(results["openvla_kv_cache_s"], results["parallel_s"])
    return out


def as_openvla(policy: OpenVLAOFTPolicy) -> OpenVLAPolicy:
    """The autoregressive OpenVLA policy sharing ``policy``'s tensors (the two families' checkpoints are the same)."""
    from vlacrl.models.openvla_oft.checkpoint import _rebuild_rotary

    with torch.device("meta"):
        openvla = OpenVLAPolicy(policy.config, unnorm_key=policy.unnorm_key)
    openvla.load_state_dict(policy.checkpoint_state_dict(), strict=False, assign=True)
    _rebuild_rotary(openvla, str(next(policy.parameters()).device))
    return openvla.eval()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def actor_step(policy: OpenVLAOFTPolicy, batch: dict, device: str, repeats: int) -> dict[str, float]:
    """LoRA + gradient checkpointing forward/backward of -mean(logprob · advantage) on one micro-batch."""
    model = add_lora(policy)
    policy.enable_gradient_checkpointing()
    model.train()
    tokens = torch.randint(31744, 32000, (batch["input_ids"].shape[0], policy.num_action_tokens), device=device)
    advantages = torch.randn(tokens.shape, device=device)

    def step() -> None:
        out = policy.action_logprobs(**batch, action_tokens=tokens, temperature=1.6)
        loss = -(out["logprobs"] * advantages).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss_before = _peak_rss_mb()
    timing = _timed(step, device, repeats)
    if device.startswith("cuda"):
        peak = {"peak_cuda_allocated_gb": torch.cuda.max_memory_allocated() / 2**30}
    else:
        peak = {"peak_rss_growth_mb": _peak_rss_mb() - rss_before, "peak_rss_mb": _peak_rss_mb()}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {**timing, "trainable_params": trainable, **peak}


def full_size_policy(device: str) -> OpenVLAOFTPolicy:
    """7B architecture, random bf16 weights on ``device`` (no checkpoint needed)."""
    config = OpenVLAOFTConfig.from_dict(openvla_7b_config())
    config.norm_stats = {"synthetic": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}
    with torch.device("meta"):
        policy = OpenVLAOFTPolicy(config, unnorm_key="synthetic")
    policy = policy.to_empty(device=device).to(torch.bfloat16)
    with torch.no_grad():
        for param in policy.parameters():
            param.normal_(0.0, 0.02)
    from vlacrl.models.openvla_oft.checkpoint import _rebuild_rotary

    _rebuild_rotary(policy, device)
    return policy.eval()


def proportioned_policy(device: str) -> OpenVLAOFTPolicy:
    """7B widths, 2 LLM blocks, 2 blocks per ViT, random float32 weights (presets.proportioned_7b_config)."""
    from vlacrl.models.openvla_oft.presets import proportioned_7b_config

    config = OpenVLAOFTConfig.from_dict(proportioned_7b_config())
    config.norm_stats = {"synthetic": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}
    with torch.device("meta"):
        policy = OpenVLAOFTPolicy(config, unnorm_key="synthetic")
    policy = policy.to_empty(device=device)
    with torch.no_grad():
        for param in policy.parameters():
            param.normal_(0.0, 0.02)
    from vlacrl.models.openvla_oft.checkpoint import _rebuild_rotary

    _rebuild_rotary(policy, device)
    return policy.eval()


def run_tiny(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    if args.shape == "7b-proportioned":
        batch = args.batch or 1
        rollout = rollout_latency(proportioned_policy("cpu"), synthetic_batch(batch, "cpu", torch.float32), "cpu",
                                  args.repeats)  # fmt: skip
        step = actor_step(proportioned_policy("cpu"), synthetic_batch(batch, "cpu", torch.float32), "cpu", 3)
        return {"model": "7B widths, 2+2+2 blocks", "device": "cpu", "batch": batch, "micro_batch": batch,
                "rollout": rollout, "actor_step": step}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_tiny_checkpoint(os.path.join(tmp, "tiny"), seed=0)
        policy = load_policy(model_dir, dtype=torch.float32, unnorm_key="libero_spatial")
        train_policy = load_policy(model_dir, dtype=torch.float32)
        train_openvla = load_policy(model_dir, dtype=torch.float32, num_action_chunks=1, policy_class=OpenVLAPolicy)
    batch = args.batch or 8
    rollout = rollout_latency(policy, synthetic_batch(batch, "cpu", torch.float32), "cpu", args.repeats)
    step = actor_step(train_policy, synthetic_batch(args.micro_batch, "cpu", torch.float32), "cpu", args.repeats)
    step_openvla = actor_step(train_openvla, synthetic_batch(args.micro_batch, "cpu", torch.float32), "cpu",
                              args.repeats)  # fmt: skip
    return {"model": "tiny", "device": "cpu", "batch": batch, "micro_batch": args.micro_batch,
            "rollout": rollout, "actor_step": step, "actor_step_openvla": step_openvla}  # fmt: skip


def run_full(args: argparse.Namespace) -> dict:
    device = "cuda"
    policy = full_size_policy(device)
    rollout = rollout_latency(policy, synthetic_batch(64, device, torch.bfloat16), device, args.repeats)
    del policy
    torch.cuda.empty_cache()
    step = actor_step(full_size_policy(device), synthetic_batch(32, device, torch.bfloat16), device, args.repeats)
    return {"model": "7B random bf16", "device": torch.cuda.get_device_name(0), "batch": 64, "micro_batch": 32,
            "rollout": rollout, "actor_step": step}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["tiny", "7b-proportioned"], default="tiny", help="CPU model shape")
    parser.add_argument("--batch", type=int, default=None, help="rollout batch (default 8 tiny, 1 7b-proportioned)")
    parser.add_argument("--micro-batch", type=int, default=8, help="actor micro-batch (tiny model)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also run the 7B architecture (needs CUDA)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args()
    results = {"host": platform.node(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "runs": [run_tiny(args)]}  # fmt: skip
    if args.full:
        if not torch.cuda.is_available():
            raise SystemExit("--full needs a CUDA GPU")
        results["runs"].append(run_full(args))
    for run in results["runs"]:
        r, s = run["rollout"], run["actor_step"]
        times = {k: f"{v['median']:.3f}s (spread {v['spread']:.3f})" for k, v in r["results"].items()}
        shown = {k: f"{v['ratio']:.1f}x" if v["ratio"] else v["why"] for k, v in (("ratio", r["ratio"]),
                 ("vision once", r["ratio_vision_once"]))}  # fmt: skip
        print(
            f"[{run['model']} on {run['device']}] rollout batch {run['batch']}, {r['runs']} alternating runs, "
            f"load {r['load_before']} -> {r['load_after']}: {times}; autoregressive / parallel: {shown}"
        )
        for label, step in (("OpenVLA-OFT", s), ("OpenVLA", run.get("actor_step_openvla"))):
            if step is None:
                continue
            mem = {k: round(v, 1) for k, v in step.items() if k.startswith("peak")}
            print(
                f"[{run['model']} on {run['device']}] {label} actor micro-batch {run['micro_batch']} (LoRA + grad "
                f"ckpt) forward+backward {step['seconds']:.3f}s (spread {step['spread']:.3f}, {step['repeats']} runs), "
                f"memory {mem}, trainable {step['trainable_params']:,}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
