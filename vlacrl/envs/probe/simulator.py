"""The probe world as a :class:`~vlacrl.envs.simulator.Simulator`: in-process, no renderer library, no assets."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.probe import tasks
from vlacrl.envs.probe.world import ProbeConfig, ProbeSim
from vlacrl.envs.sim_pool import InProcessSimPool
from vlacrl.envs.simulator import Simulator

#: keys of the ``env.<split>.probe`` section (each a field of :class:`ProbeConfig`)
WORLD_KEYS = ("step_size", "action_centre", "start_radius", "num_init_states", "num_distractors", "seed")


class ProbeSimulator(Simulator):
    name = "probe"
    label = "probe"
    suite_task_counts = {tasks.SUITE: tasks.NUM_TASKS}

    def task_language(self, suite: str, task_id: int) -> str:
        (task_id,) = self.validate_task_ids(suite, [task_id])
        return tasks.task(task_id).language

    def num_init_states(self, sim_config: ProbeConfig, task_id: int) -> int:
        self.validate_task_ids(sim_config.suite, [task_id])
        return sim_config.num_init_states

    def default_sim_config(self) -> ProbeConfig:
        return ProbeConfig()

    def sim_config(self, env_cfg: Mapping[str, Any]) -> ProbeConfig:
        """``task_suite_name``, ``max_episode_steps``, ``init_params.camera_heights`` and the ``probe`` section."""
        init = env_cfg.get("init_params") or {}
        size = int(init.get("camera_heights", 256))
        if int(init.get("camera_widths", size)) != size:
            raise EnvConfigError("camera_heights and camera_widths must be equal (square images)")
        world = dict(env_cfg.get("probe") or {})
        unknown = sorted(set(world) - set(WORLD_KEYS))
        if unknown:
            raise EnvConfigError(f"probe: unknown key(s) {unknown}; the probe world takes {list(WORLD_KEYS)}")
        if "action_centre" in world:
            world["action_centre"] = tuple(float(v) for v in world["action_centre"])
        config = ProbeConfig(
            suite=self.validate_suite(str(env_cfg.get("task_suite_name", tasks.SUITE))),
            image_size=size,
            max_episode_steps=int(env_cfg.get("max_episode_steps", ProbeConfig.max_episode_steps)),
            **world,
        )
        check_config(config)
        return config

    def open_pool(
        self,
        sim_config: ProbeConfig,
        task_ids: Sequence[int],
        *,
        num_processes: int | None,
        in_process: bool,
        cuda_device: int | None,
        env_vars: Mapping[str, str],
    ):
        """Every probe sim runs in the calling process (``num_processes`` and rendering settings do not apply)."""
        return InProcessSimPool(sim_config, task_ids, ProbeSim, self.label)

    def to_env_actions(self, model_actions: np.ndarray) -> np.ndarray:
        """The probe world reads the model's own convention (gripper > 0.5 open): a float64 copy."""
        return np.array(model_actions, dtype=np.float64)


def check_config(config: ProbeConfig) -> None:
    """One :class:`EnvConfigError` per impossible world setting."""
    if len(config.action_centre) != 3:
        raise EnvConfigError(f"probe.action_centre must have 3 values (x, y, z), got {list(config.action_centre)}")
    for name in ("step_size", "start_radius"):
        if not getattr(config, name) > 0:
            raise EnvConfigError(f"probe.{name} must be > 0, got {getattr(config, name)}")
    if config.num_init_states < 1:
        raise EnvConfigError(f"probe.num_init_states must be >= 1, got {config.num_init_states}")
    if not 0 <= config.num_distractors < tasks.NUM_TASKS:
        raise EnvConfigError(f"probe.num_distractors must lie in [0, {tasks.NUM_TASKS - 1}]")
    if config.start_radius >= tasks.EDGE:
        raise EnvConfigError(f"probe.start_radius must be < {tasks.EDGE} (episodes would start inside a target)")
