"""Success of a policy on each probe task, in this process (no Ray): the calibration numbers of
configs/cpu_probe.yaml, configs/cpu_probe_cnn.yaml and docs/probe.md.

    python benchmarks/probe_calibration.py model/tiny-openvla-oft-probe-sft --tasks 0,1,2,3 --episodes 16
    python benchmarks/probe_calibration.py model/simple-cnn-probe-sft/best_checkpoint.pt --step-size 0.05

The policy is an OpenVLA-OFT directory or a Simple CNN checkpoint file (``.pt``). Prints per task: success rate
(sampled as training rollouts sample: temperature 1.6 for OpenVLA-OFT, softmax of the logits for the CNN; and
greedy) and the mean xyz action. A base policy that RL can improve has success well above 0 and below 1 on the
tasks it will train on.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from vlacrl.envs.registry import get_simulator
from vlacrl.envs.vector_env import VectorEnv, VectorEnvConfig
from vlacrl.models.openvla_oft import OpenVLAOFTProcessor
from vlacrl.models.openvla_oft.checkpoint import load_policy
from vlacrl.models.simple_cnn_rl import SimpleCNNProcessor, load_rl_policy


def load(path: str, unnorm_key: str):
    """(policy, processor) of an OpenVLA-OFT directory or a Simple CNN checkpoint file."""
    if path.endswith(".pt"):
        policy = load_rl_policy(path).eval()
        return policy, SimpleCNNProcessor(policy.meta["task_id_map"])
    policy = load_policy(path, dtype=torch.float32, unnorm_key=unnorm_key)
    return policy, OpenVLAOFTProcessor.from_model_dir(path)


def task_success(policy, processor, world, task_id: int, episodes: int, *, greedy: bool, seed: int) -> dict:
    """Mean success_once of ``episodes`` episodes of one task and the mean xyz action taken."""
    config = VectorEnvConfig(num_envs=episodes, group_size=1, task_ids=[task_id], mode="eval", sim=world)
    generator = torch.Generator().manual_seed(seed)
    actions_taken = []
    with VectorEnv(config, get_simulator("probe")) as env:
        obs = env.start_epoch()
        for _ in range(world.max_episode_steps // policy.num_action_chunks):
            images = torch.from_numpy(obs["full_image"])
            inputs = processor(
                obs["task_descriptions"], images if isinstance(processor, SimpleCNNProcessor) else images.float()
            )
            prediction = policy.predict_action_batch(
                inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"], greedy=greedy,
                generator=generator,
            )  # fmt: skip
            actions = prediction.actions.numpy()
            actions_taken.append(actions[..., :3].reshape(-1, 3))
            obs, _, _, _, infos = env.chunk_step(actions)
        success = float(np.mean(infos["episode"]["success_once"]))
    return {"success": success, "mean_action": np.concatenate(actions_taken).mean(0).round(3).tolist()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--tasks", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-episode-steps", type=int, default=32)
    parser.add_argument("--action-centre", default="0.075,0.075,0.025")
    parser.add_argument("--step-size", type=float, default=0.18)
    parser.add_argument("--unnorm-key", default="libero_spatial_no_noops")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    policy, processor = load(args.model_dir, args.unnorm_key)
    world = get_simulator("probe").sim_config({
        "task_suite_name": "probe",
        "max_episode_steps": args.max_episode_steps,
        "probe": {"action_centre": [float(v) for v in args.action_centre.split(",")], "step_size": args.step_size},
    })  # fmt: skip
    rows = {}
    for task_id in [int(t) for t in args.tasks.split(",")]:
        sampled = task_success(policy, processor, world, task_id, args.episodes, greedy=False, seed=task_id)
        greedy = task_success(policy, processor, world, task_id, args.episodes, greedy=True, seed=task_id)
        rows[task_id] = {
            "sampled": sampled["success"],
            "greedy": greedy["success"],
            "mean_action": sampled["mean_action"],
        }
        print(f"task {task_id}: success sampled {sampled['success']:.2f}, greedy {greedy['success']:.2f}, "
              f"mean xyz action {sampled['mean_action']}", flush=True)  # fmt: skip
    print(json.dumps({"model_dir": args.model_dir, "tasks": rows, "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
