"""LIBERO as a :class:`~vlacrl.envs.simulator.Simulator`: robosuite/MuJoCo sims in spawned sub-processes.

Before any sim starts the render backend is chosen and probed (:mod:`vlacrl.envs.libero.render`): an explicit
``MUJOCO_GL`` wins; an env worker on a GPU renders with EGL on that GPU; otherwise OSMesa.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.libero import perturbations, render, suites
from vlacrl.envs.libero.convert import model_to_env_actions
from vlacrl.envs.libero.errors import RenderBackendError
from vlacrl.envs.libero.setup import ensure_libero_ready
from vlacrl.envs.libero.sim import SimConfig
from vlacrl.envs.sim_pool import InProcessSimPool, SubprocSimPool, apply_env, default_num_processes
from vlacrl.envs.simulator import Simulator

logger = logging.getLogger(__name__)

MEMORY_PER_SIM_GB = 2.0  # measured RSS of a process with one rendering LIBERO env, 1.97 GB (docs/libero.md)
SIM_FACTORY = "vlacrl.envs.libero.sim:LiberoSim"


class LiberoSimulator(Simulator):
    name = "libero"
    label = "LIBERO"
    suite_task_counts = suites.SUITE_TASK_COUNTS

    def task_language(self, suite: str, task_id: int) -> str:
        return suites.task_spec(suite, task_id).language

    def num_init_states(self, sim_config: SimConfig, task_id: int) -> int:
        return suites.num_init_states(sim_config.suite, task_id)

    def default_sim_config(self) -> SimConfig:
        return SimConfig()

    def sim_config(self, env_cfg: Mapping[str, Any]) -> SimConfig:
        init = env_cfg.get("init_params") or {}
        size = int(init.get("camera_heights", 256))
        if int(init.get("camera_widths", size)) != size:
            raise EnvConfigError("camera_heights and camera_widths must be equal (square images)")
        cameras = tuple(env_cfg.get("cameras") or ("agentview",))
        if not cameras:
            raise EnvConfigError("at least one camera is needed (the policy's camera first)")
        suite = str(env_cfg["task_suite_name"])
        return SimConfig(
            suite=suite,
            cameras=cameras,
            image_size=size,
            max_episode_steps=int(env_cfg.get("max_episode_steps", 512)),
            perturbations=perturbations.per_task(init, suites.SUITE_TASK_COUNTS.get(suite, 0)),
        )

    def open_pool(
        self,
        sim_config: SimConfig,
        task_ids: Sequence[int],
        *,
        num_processes: int | None,
        in_process: bool,
        cuda_device: int | None,
        env_vars: Mapping[str, str],
    ):
        ensure_libero_ready()
        changes = render.render_env_for_subprocess(None if in_process else cuda_device)
        render.require_working_backend(changes.get("MUJOCO_GL"), changes)
        if in_process:
            apply_env(changes)  # before this process first imports robosuite
            from vlacrl.envs.libero.sim import LiberoSim  # after the render set-up

            return InProcessSimPool(sim_config, task_ids, LiberoSim, self.label)
        sim_config = dataclasses.replace(sim_config, tasks=suites.suite_task_data(sim_config.suite))  # no torch there
        procs = num_processes or default_num_processes(len(task_ids), MEMORY_PER_SIM_GB)
        child_env = dict(changes)
        if procs > 1:
            child_env.setdefault("LP_NUM_THREADS", "1")  # llvmpipe threads compete across processes
        child_env.update(env_vars)
        backend = child_env.get("MUJOCO_GL") or os.environ.get("MUJOCO_GL")
        logger.info("starting %d LIBERO sims in %d processes (MUJOCO_GL=%s)", len(task_ids), procs, backend)
        return SubprocSimPool(sim_config, task_ids, procs, child_env, factory=SIM_FACTORY, label=self.label)

    def to_env_actions(self, model_actions: np.ndarray) -> np.ndarray:
        return model_to_env_actions(model_actions)

    def dataset_root(self) -> Path:
        """``<LIBERO config dir>/datasets``: where LIBERO's download script and the reference put data."""
        from vlacrl.envs.libero.setup import default_config_dir

        return default_config_dir() / "datasets"

    def rlds_release(self, suite: str) -> Path:
        """``<root>/modified_libero_rlds/<suite>_no_noops/1.0.0``: OpenVLA's re-rendered 256² demos without
        no-ops (``openvla/modified_libero_rlds``), where the reference's precompute worker reads them."""
        return self.dataset_root() / "modified_libero_rlds" / f"{suite}_no_noops" / "1.0.0"

    def prepare(self) -> None:
        ensure_libero_ready()

    def check_runtime(self, *, uses_gpu: bool, joining_cluster: bool) -> None:
        """MuJoCo renders with the backend the env workers will use: ``MUJOCO_GL`` when set, else OSMesa for CPU
        env workers (one probe subprocess). EGL chosen for GPU env workers is probed by each env worker for its
        own device, and nothing is probed when joining a cluster (the env workers run on other machines)."""
        if joining_cluster:
            return
        explicit = os.environ.get("MUJOCO_GL", "").strip().lower()
        if explicit and explicit not in render.BACKENDS:
            raise EnvConfigError(
                f"MUJOCO_GL={explicit}: unknown render backend; use osmesa (CPU), egl (NVIDIA GPUs) or glfw "
                "(a display), or unset it"
            )
        if not explicit and uses_gpu:
            return
        try:
            render.require_working_backend(explicit or "osmesa")
        except RenderBackendError as exc:
            raise EnvConfigError(str(exc)) from None
