"""LIBERO env throughput: stock env vs vlacrl's gated env vs physics only, and the vectorised env.

Env steps/s per process, all driven by the same 8-step action chunks from the same init state:

  (a) stock ``OffScreenRenderEnv`` with its default cameras (agentview + wrist) at 256 px,
  (b) vlacrl's ``LiberoSim``: agentview only, rendered once per chunk,
  (c) physics only: ``ControlEnv`` without a renderer (the upper limit),
  (d) ``LiberoVectorEnv`` with 2 envs in 1 process and in 2 processes (total env steps/s).

Every configuration is measured ``--runs`` times (≥ 3), alternating within each round; the table gives medians and
spreads, the load average before and after, and a ratio only where the medians differ by more than the spread
(benchmarks/repeated.py).

Usage:  python benchmarks/env_throughput.py [--chunks 12] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

SUITE, TASK, TRIAL, CHUNK = "libero_spatial", 0, 0, 8


def _chunks(n: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(n, CHUNK, 7)) * np.array([0.3] * 6 + [1.0])


def _time_stock(env, chunks: np.ndarray) -> float:
    from vlacrl.envs.libero import suites

    env.seed(0)
    env.reset()
    env.set_init_state(suites.init_states(SUITE, TASK)[TRIAL])
    for action in chunks[0]:  # warm-up chunk
        env.step(action)
    start = time.perf_counter()
    for chunk in chunks[1:]:
        for action in chunk:
            env.step(action)
    return (len(chunks) - 1) * CHUNK / (time.perf_counter() - start)


def bench_stock(chunks: np.ndarray, render: bool) -> float:
    from libero.libero.envs import OffScreenRenderEnv
    from libero.libero.envs.env_wrapper import ControlEnv

    from vlacrl.envs.libero import suites

    bddl = str(suites.task_spec(SUITE, TASK).bddl_file)
    if render:
        env = OffScreenRenderEnv(bddl_file_name=bddl, camera_heights=256, camera_widths=256)
    else:
        env = ControlEnv(bddl_file_name=bddl, has_offscreen_renderer=False, use_camera_obs=False)
    try:
        return _time_stock(env, chunks)
    finally:
        env.close()


def bench_ours(chunks: np.ndarray) -> float:
    from vlacrl.envs.libero.sim import LiberoSim, SimConfig

    sim = LiberoSim(SimConfig(suite=SUITE), TASK)
    try:
        sim.reset(TRIAL)
        sim.step_chunk(chunks[0])
        start = time.perf_counter()
        for chunk in chunks[1:]:
            sim.step_chunk(chunk)
        return (len(chunks) - 1) * CHUNK / (time.perf_counter() - start)
    finally:
        sim.close()


def bench_vector(chunks: np.ndarray, num_envs: int, num_processes: int) -> float:
    from vlacrl.envs.libero.sim import SimConfig
    from vlacrl.envs.libero.vector_env import LiberoVectorEnv
    from vlacrl.envs.vector_env import VectorEnvConfig

    config = VectorEnvConfig(num_envs=num_envs, group_size=num_envs, task_ids=[TASK],
                             num_processes=num_processes, sim=SimConfig(suite=SUITE))  # fmt: skip
    with LiberoVectorEnv(config) as env:
        env.start_epoch()
        batch = lambda c: np.repeat(c[None], num_envs, axis=0)  # noqa: E731
        env.chunk_step(batch(chunks[0]))
        start = time.perf_counter()
        for chunk in chunks[1:]:
            env.chunk_step(batch(chunk))
        return num_envs * (len(chunks) - 1) * CHUNK / (time.perf_counter() - start)


def main() -> None:
    from repeated import measure_alternating, ratio, report

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=12, help="timed chunks per config (+1 warm-up)")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per configuration (>= 3)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    from vlacrl.envs.libero.setup import ensure_libero_ready

    ensure_libero_ready()
    chunks = _chunks(args.chunks + 1)
    configs = {
        "a_stock_2cams_256_every_step": lambda: bench_stock(chunks, render=True),
        "b_vlacrl_1cam_chunk_end": lambda: bench_ours(chunks),
        "c_physics_only": lambda: bench_stock(chunks, render=False),
        "d_vector_2envs_1proc_total": lambda: bench_vector(chunks, 2, 1),
        "d_vector_2envs_2procs_total": lambda: bench_vector(chunks, 2, 2),
    }
    measured = measure_alternating(configs, runs=args.runs)
    results = measured["results"]
    ratios = {
        "b_over_a": ratio(results["b_vlacrl_1cam_chunk_end"], results["a_stock_2cams_256_every_step"]),
        "b_over_c": ratio(results["b_vlacrl_1cam_chunk_end"], results["c_physics_only"]),
        "d_2procs_over_1proc": ratio(results["d_vector_2envs_2procs_total"], results["d_vector_2envs_1proc_total"]),
    }
    machine = f"{platform.node()} {os.cpu_count()} cores, MUJOCO_GL={os.environ['MUJOCO_GL']}"
    load = f"load average {measured['load_before']} -> {measured['load_after']}"
    print(f"{machine}; {args.runs} alternating runs; {load}")
    print("| measurement | env steps/s, median (spread) | runs |")
    print("|---|---|---|")
    for name, m in results.items():
        print(f"| {name} | {m.median:.2f} ({m.spread:.2f}) | {', '.join(f'{v:.2f}' for v in m.values)} |")
    for name, r in ratios.items():
        shown = f"{r['ratio']:.2f}" if r["ratio"] else r["why"]
        print(f"| ratio {name} | {shown} | |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**report(measured), "ratios": ratios, "machine": machine}, f, indent=2)


if __name__ == "__main__":
    main()
