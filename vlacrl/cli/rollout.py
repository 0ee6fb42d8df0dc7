"""``vlacrl-rollout``: run a scripted policy in real LIBERO envs; write a video and episode statistics.

A smoke test of the whole simulator stack (LIBERO install, rendering, vectorised sub-process envs,
reset-state sampling, rewards, metrics, videos) that needs no model. The scripted policy moves the
gripper down towards the table, closes it and lifts, so the video shows the arm acting.

Outputs under ``--out``: ``videos/rank_0/<name>.mp4``, ``episode_stats.json`` (per-episode metrics
named as the reference's, plus timings and env steps/s).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from vlacrl.envs.errors import EnvConfigError, EnvWorkerError
from vlacrl.envs.libero.errors import LiberoSetupError, RenderBackendError
from vlacrl.envs.libero.sim import SimConfig
from vlacrl.envs.video import VideoConfig

CHUNK = 8  # actions per chunk (OpenVLA-OFT: 8)


def scripted_chunk(chunk_index: int, num_envs: int) -> np.ndarray:
    """[B, 8, 7] model-convention actions: descend, close the gripper, lift (a visible motion)."""
    actions = np.zeros((num_envs, CHUNK, 7))
    phase = chunk_index % 6
    if phase < 3:
        actions[..., 2] = -0.5  # down
        actions[..., 6] = 1.0  # model convention: > 0.5 means open
    else:
        actions[..., 2] = 0.5  # up
        actions[..., 6] = 0.0  # close
    return actions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="libero_spatial")
    p.add_argument("--tasks", default="0", help="comma-separated task ids (default: 0)")
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--chunks", type=int, default=8, help="chunks per episode (episode = chunks x 8 env steps)")
    p.add_argument("--epochs", type=int, default=1, help="episodes per env")
    p.add_argument("--out", type=Path, default=Path("runs/rollout"))
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--in-process", action="store_true", help="run the simulators in this process")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    from vlacrl.envs.libero.vector_env import LiberoVectorEnv
    from vlacrl.envs.vector_env import VectorEnvConfig  # noqa: PLC0415

    tasks = [int(t) for t in args.tasks.split(",") if t.strip()]
    config = VectorEnvConfig(
        num_envs=args.num_envs,
        group_size=1,
        task_ids=tasks,
        mode="eval" if args.num_envs % len(tasks) == 0 else "random",
        in_process=args.in_process,
        sim=SimConfig(suite=args.suite, max_episode_steps=args.chunks * CHUNK),
        video=VideoConfig(save_video=not args.no_video, video_base_dir=str(args.out / "videos")),
    )
    episodes, env_steps, step_seconds = [], 0, 0.0
    start = time.monotonic()
    with LiberoVectorEnv(config) as env:
        setup_seconds = time.monotonic() - start
        for epoch in range(args.epochs):
            env.start_epoch()
            t0 = time.monotonic()
            for c in range(args.chunks):
                _, _, _, _, infos = env.chunk_step(scripted_chunk(c, args.num_envs))
            step_seconds += time.monotonic() - t0
            env_steps += args.num_envs * args.chunks * CHUNK
            ep = infos["episode"]
            for i in range(args.num_envs):
                episodes.append({"epoch": epoch, "env": i, **{k: np.asarray(v)[i].item() for k, v in ep.items()}})
            env.finish_epoch(video_name=f"epoch_{epoch}")
        videos = [str(p) for p in env.video.written]
    return {
        "suite": args.suite,
        "tasks": tasks,
        "episodes": episodes,
        "success_once": float(np.mean([e["success_once"] for e in episodes])),
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / max(step_seconds, 1e-9),
        "setup_seconds": setup_seconds,
        "videos": videos,
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        stats = run(args)
    except (EnvConfigError, LiberoSetupError, RenderBackendError, EnvWorkerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stats_path = args.out / "episode_stats.json"
    stats_path.write_text(json.dumps(stats, indent=2))
    print(
        f"{len(stats['episodes'])} episodes, success_once={stats['success_once']:.2f}, "
        f"{stats['env_steps_per_s']:.1f} env steps/s"
    )
    print(f"statistics: {stats_path}")
    for video in stats["videos"]:
        print(f"video:      {video}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
