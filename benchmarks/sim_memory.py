"""Resident memory of LIBERO sim processes (issue L, item 5; benchmarks/RESULTS.md, "Env memory").

    MUJOCO_GL=osmesa .venv/bin/python benchmarks/sim_memory.py [--runs 3]

Per configuration one ``SubprocSimPool`` process (libero_spatial, agentview 256 px), every env reset once, then
the process's VmRSS and whether libtorch is mapped in it: (a) one env, task specs and init states sent by the
parent (what vlacrl does); (b) one env, the sim reading LIBERO's benchmark module itself (which imports torch);
(c) two envs in one process, so (c) − (a) is the cost of one more env in a process. Each configuration runs
``--runs`` times, alternating (benchmarks/repeated.py): median RSS, spread, load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from vlacrl.envs.libero import suites
from vlacrl.envs.libero.setup import ensure_libero_ready
from vlacrl.envs.libero.sim import SimConfig
from vlacrl.envs.libero.simulator import SIM_FACTORY
from vlacrl.envs.sim_pool import SubprocSimPool


def process_rss_mb(pid: int) -> float:
    status = open(f"/proc/{pid}/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def measure(config: SimConfig, task_ids: list[int]) -> dict:
    pool = SubprocSimPool(config, task_ids, 1, {"MUJOCO_GL": "osmesa"}, factory=SIM_FACTORY, label="LIBERO")
    try:
        pool.call("reset", {env: (0,) for env in range(len(task_ids))})
        pid = pool.pids[0]
        return {"rss_mb": round(process_rss_mb(pid)), "libtorch_mapped": "libtorch" in open(f"/proc/{pid}/maps").read()}
    finally:
        pool.close()


def main() -> None:
    from repeated import measure_alternating, report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per configuration (>= 3)")
    args = parser.parse_args()
    ensure_libero_ready()
    with_table = dataclasses.replace(SimConfig(), tasks=suites.suite_task_data("libero_spatial"))
    configs = {
        "one env, task table from the parent": lambda: measure(with_table, [0]),
        "one env, LIBERO benchmark imported in the sim": lambda: measure(SimConfig(), [0]),
        "two envs in one process, task table from the parent": lambda: measure(with_table, [0, 1]),
    }
    torch_mapped = {name: set() for name in configs}

    def rss_of(name):
        def run() -> float:
            result = configs[name]()
            torch_mapped[name].add(result["libtorch_mapped"])
            return result["rss_mb"]

        return run

    measured = report(measure_alternating({name: rss_of(name) for name in configs}, runs=args.runs))
    for name, mapped in torch_mapped.items():
        measured["results"][name]["libtorch_mapped"] = sorted(mapped)
    print(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main()
