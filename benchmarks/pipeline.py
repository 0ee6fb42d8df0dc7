"""End-to-end env throughput of the Ray training loop vs the standalone vectorised env (issue C).

Both sides do the same env work: E epochs of (reset + N chunks of 8 steps) on the same envs
(LIBERO-Spatial task 0, 4 envs in 2 sim processes, 256 px agentview). The standalone side steps
the envs with zero actions in a plain process; the Ray side is ``vlacrl-train`` with the tiny policy
(env worker, rollout worker with real inference, FSDP2 actor), read from ``rollout/env_steps_per_s``
of the last global step (the first one warms up). Reported ratio = Ray / standalone, for
``rollout.pipeline_stage_num`` 1 and 2, with the last step's profile (``time/*``: driver phases, summed worker busy
time, the coordination overhead and its share of the step; medians over the runs). The three configurations
alternate, ``--runs`` rounds (≥ 3): medians,
spreads, the load average before and after, and a ratio only where the difference exceeds the spread
(benchmarks/repeated.py).

Usage:  python benchmarks/pipeline.py [--epochs 2] [--chunks 8] [--steps 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
NUM_ENVS, GROUPS, CHUNK = 4, 2, 8  # 2 GRPO groups of 2: one per stage when S = 2


def standalone_rate(epochs: int, chunks: int) -> float:
    from vlacrl.envs.libero.sim import SimConfig
    from vlacrl.envs.libero.vector_env import LiberoVectorEnv
    from vlacrl.envs.vector_env import VectorEnvConfig

    config = VectorEnvConfig(num_envs=NUM_ENVS, group_size=2, task_ids=[0], num_processes=2,
                             sim=SimConfig(max_episode_steps=chunks * CHUNK))  # fmt: skip
    with LiberoVectorEnv(config) as env:
        env.start_epoch()  # warm-up
        start = time.perf_counter()
        for _ in range(epochs):
            env.start_epoch()
            for _ in range(chunks):
                env.chunk_step(np.zeros((NUM_ENVS, CHUNK, 7)))
            env.finish_epoch()
        return epochs * chunks * CHUNK * NUM_ENVS / (time.perf_counter() - start)


#: the last global step's profile, as logged (vlacrl.metrics.timers)
PROFILE_TAGS = ("time/step", "time/weight_sync", "time/rollout", "time/actor_training", "time/env_step",
                "time/rollout_inference", "time/coordination_overhead", "time_share/coordination_overhead")  # fmt: skip


def ray_rate(
    epochs: int, chunks: int, steps: int, stages: int, log_dir: Path, *, profiles: list | None = None
) -> float:
    """``rollout/env_steps_per_s`` of the run's last global step; its profile is appended to ``profiles``."""
    samples = epochs * chunks * NUM_ENVS
    overrides = [
        f"runner.logger.log_path={log_dir}", f"runner.max_epochs={steps}", "runner.save_interval=-1",
        "runner.resume=disable", "runner.logger.logger_backends=[tensorboard]",
        f"algorithm.rollout_epoch={epochs}", f"env.train.max_episode_steps={chunks * CHUNK}",
        "env.train.video_cfg.save_video=False", f"rollout.pipeline_stage_num={stages}",
        f"actor.global_batch_size={samples}", f"actor.micro_batch_size={samples // 4}",
        f"algorithm.num_group_envs={GROUPS}", f"env.train.num_processes={2 // stages}",
    ]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "vlacrl.cli.train", *overrides], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir / "tensorboard"))
    acc.Reload()
    if profiles is not None:
        profiles.append({tag: float(acc.Scalars(tag)[-1].value) for tag in PROFILE_TAGS})
    return float(acc.Scalars("rollout/env_steps_per_s")[-1].value)


def median_profile(profiles: list[dict]) -> dict[str, float]:
    """Per tag, the median over the runs' profiles."""
    return {tag: float(np.median([p[tag] for p in profiles])) for tag in PROFILE_TAGS}


def main() -> None:
    from repeated import measure_alternating, ratio, report

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="rollout epochs per global step")
    parser.add_argument("--chunks", type=int, default=8, help="chunks per episode")
    parser.add_argument("--steps", type=int, default=3, help="global steps of the Ray run (the last is reported)")
    parser.add_argument("--runs", type=int, default=3, help="rounds over the three configurations (>= 3)")
    args = parser.parse_args()
    from vlacrl.envs.libero.setup import ensure_libero_ready

    ensure_libero_ready()
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))
        profiles: dict[int, list] = {1: [], 2: []}
        configs = {"standalone_env_steps_per_s": lambda: standalone_rate(args.epochs, args.chunks)}
        for stages in (1, 2):
            configs[f"ray_loop_env_steps_per_s_stages{stages}"] = lambda s=stages: ray_rate(
                args.epochs, args.chunks, args.steps, s, Path(tmp) / f"s{s}_{next(counter)}", profiles=profiles[s]
            )
        measured = measure_alternating(configs, args.runs)
    results = measured["results"]
    out = report(measured)
    for stages in (1, 2):
        out[f"profile_stages{stages}"] = median_profile(profiles[stages])
        out[f"ratio_stages{stages}"] = ratio(results[f"ray_loop_env_steps_per_s_stages{stages}"],
                                             results["standalone_env_steps_per_s"])  # fmt: skip
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
