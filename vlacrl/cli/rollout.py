"""``vlacrl-rollout``: run a scripted policy in real envs (LIBERO or the probe world); write videos, episode
statistics and, for the probe world's expert, demonstration files.

A smoke test of the whole simulator stack (install, rendering, vectorised envs, reset-state sampling, rewards,
metrics, videos) that needs no model. Policies (``--policy``):

* ``scripted`` (any simulator): moves the gripper down, closes it and lifts, so the video shows the arm acting;
* ``expert`` (probe only): heads for each task's target (:mod:`vlacrl.envs.probe.expert`); with ``--demo-dir``
  it also records ``--demos-per-task`` demonstrations per task, one ``<instruction>.hdf5`` per task in the
  replay layout that ER, DER and iRe-VLA read (``crl.dataset_dir``; docs/probe.md).

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

from vlacrl.cli.common import OneLineParser, int_list, output_dir
from vlacrl.data.expert_demos import ExpertDemoError
from vlacrl.envs.errors import EnvConfigError, EnvWorkerError, SimulatorUnavailableError
from vlacrl.envs.registry import SIMULATORS, get_simulator
from vlacrl.envs.video import VideoConfig

CHUNK = 8  # actions per chunk (OpenVLA-OFT: 8)
DEFAULT_SUITES = {"libero": "libero_spatial", "probe": "probe"}


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
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--simulator", choices=sorted(SIMULATORS), default="libero")
    p.add_argument("--suite", default=None, help="task suite (default: libero_spatial, or probe)")
    p.add_argument("--tasks", type=int_list, default=[0], help="comma-separated task ids (default: 0)")
    p.add_argument("--policy", choices=["scripted", "expert"], default="scripted")
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--chunks", type=int, default=8, help="chunks per episode (episode = chunks x 8 env steps)")
    p.add_argument("--epochs", type=int, default=1, help="episodes per env")
    p.add_argument("--out", type=output_dir, default=Path("runs/rollout"))
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--in-process", action="store_true", help="run the simulators in this process")
    p.add_argument("--demo-dir", type=output_dir, default=None, help="write expert demonstrations here (probe expert)")
    p.add_argument("--demos-per-task", type=int, default=10)
    p.add_argument("--probe-action-centre", default=None, help="x,y,z: the probe world's standing-still action")
    p.add_argument("--probe-step-size", type=float, default=None, help="the probe world's step size (default 0.18)")
    args = p.parse_args(argv)
    args.suite = args.suite or DEFAULT_SUITES.get(args.simulator, "")
    if args.policy == "expert" and args.simulator != "probe":
        p.error("--policy expert needs --simulator probe (LIBERO's demos come from its download script)")
    if args.demo_dir is not None and args.policy != "expert":
        p.error("--demo-dir records the expert's episodes: add --policy expert")
    return args


def sim_config(args: argparse.Namespace):
    """The simulator's config for these arguments (suite, episode length, probe world settings)."""
    simulator = get_simulator(args.simulator)
    env_cfg = {"task_suite_name": args.suite, "max_episode_steps": args.chunks * CHUNK}
    world = {}
    if args.probe_action_centre:
        world["action_centre"] = [float(v) for v in args.probe_action_centre.split(",")]
    if args.probe_step_size is not None:
        world["step_size"] = args.probe_step_size
    if world:
        env_cfg["probe"] = world
    return simulator, simulator.sim_config(env_cfg)


def expert_chunks(config, task_ids: np.ndarray, states: np.ndarray) -> np.ndarray:
    """[B, 8, 7] probe expert actions for envs at positions ``states[:, :3]``."""
    from vlacrl.envs.probe.expert import expert_chunk

    return np.stack([expert_chunk(config, int(t), s[:3], CHUNK) for t, s in zip(task_ids, states)])


def run(args: argparse.Namespace) -> dict:
    from vlacrl.envs.vector_env import VectorEnv, VectorEnvConfig

    simulator, world = sim_config(args)
    tasks = simulator.validate_task_ids(args.suite, args.tasks)
    config = VectorEnvConfig(
        num_envs=args.num_envs,
        group_size=1,
        task_ids=tasks,
        mode="eval" if args.num_envs % len(tasks) == 0 else "random",
        in_process=args.in_process,
        sim=world,
        video=VideoConfig(save_video=not args.no_video, video_base_dir=str(args.out / "videos")),
    )
    episodes, env_steps, step_seconds = [], 0, 0.0
    start = time.monotonic()
    with VectorEnv(config, simulator) as env:
        setup_seconds = time.monotonic() - start
        for epoch in range(args.epochs):
            obs = env.start_epoch()
            t0 = time.monotonic()
            for c in range(args.chunks):
                if args.policy == "expert":
                    actions = expert_chunks(world, env.task_ids, obs["state"])
                else:
                    actions = scripted_chunk(c, args.num_envs)
                obs, _, _, _, infos = env.chunk_step(actions)
            step_seconds += time.monotonic() - t0
            env_steps += args.num_envs * args.chunks * CHUNK
            ep = infos["episode"]
            for i in range(args.num_envs):
                episodes.append({"epoch": epoch, "env": i, **{k: np.asarray(v)[i].item() for k, v in ep.items()}})
            env.finish_epoch(video_name=f"epoch_{epoch}")
        videos = [str(p) for p in env.video.written]
    stats = {
        "simulator": args.simulator,
        "suite": args.suite,
        "tasks": tasks,
        "policy": args.policy,
        "episodes": episodes,
        "success_once": float(np.mean([e["success_once"] for e in episodes])),
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / max(step_seconds, 1e-9),
        "setup_seconds": setup_seconds,
        "videos": videos,
    }
    if args.demo_dir is not None:
        from vlacrl.data.expert_demos import write_expert_demos

        stats["demo_files"] = [str(p) for p in write_expert_demos(world, tasks, args.demos_per_task, args.demo_dir)]
    return stats


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        stats = run(args)
    except (EnvConfigError, SimulatorUnavailableError, EnvWorkerError, ExpertDemoError) as exc:
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
    for demo_file in stats.get("demo_files", []):
        print(f"demos:      {demo_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
