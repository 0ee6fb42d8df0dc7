"""One LIBERO simulation in the current process, rendering only what the policy consumes.

The stock ``OffScreenRenderEnv`` renders every camera at every env step. The policy reads one
camera (agentview) once per action chunk. :class:`LiberoSim` keeps robosuite's observation
machinery untouched (so the image is sampled at exactly the same sub-step and sim state as in the
stock env) but swaps each camera sensor for a gated one that renders only while rendering is
switched on: during the last env step of a chunk, the last settle step after a reset, and every
step while a video is being recorded. Rendering never changes the physics, so trajectories and
chunk-end images are identical to the stock env's (tested in ``tests/envs``).

This module imports LIBERO lazily: set up rendering (``render.configure_rendering``) first.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np

from vlacrl.envs.libero import perturbations, suites
from vlacrl.envs.libero.convert import ACTION_DIM, proprio_state, rotate_180
from vlacrl.envs.libero.quiet import silence_import_notices
from vlacrl.envs.simulator import ChunkOutcome

DEFAULT_HORIZON = 1000  # robosuite's episode horizon in LIBERO (never reached: episodes are 512)


@dataclass(frozen=True)
class SimConfig:
    """How each simulator is built (picklable: it is sent to env sub-processes)."""

    suite: str = "libero_spatial"
    cameras: tuple[str, ...] = ("agentview",)  # the policy's camera first
    image_size: int = 256  # square camera images, pixels
    seed: int = 0  # env.seed() at construction and at every reset (the reference uses 0)
    settle_steps: int = 10  # zero-action steps after every reset
    max_episode_steps: int = 512
    gate_rendering: bool = True  # False: render every camera at every step (stock behaviour)
    extra_env_kwargs: dict = field(default_factory=dict)
    perturbations: tuple = ()  # per task id: a perturbations.ScenePerturbation (robustness suites); () = none
    tasks: tuple = ()  # per task id: a suites.TaskData from the parent; () = read LIBERO's benchmark here

    def perturbation(self, task_id: int) -> perturbations.ScenePerturbation | None:
        return self.perturbations[task_id] if task_id < len(self.perturbations) else None

    def task_spec(self, task_id: int) -> suites.TaskSpec:
        return self.tasks[task_id].spec if task_id < len(self.tasks) else suites.task_spec(self.suite, task_id)

    def init_states(self, task_id: int) -> np.ndarray:
        return self.tasks[task_id].init_states if task_id < len(self.tasks) else suites.init_states(self.suite, task_id)


class LiberoSim:
    """A LIBERO task simulation with chunked stepping and gated rendering."""

    def __init__(self, config: SimConfig, task_id: int):
        self.config = config
        self.task_id = -1
        self._env = None
        self._render_on = True
        self._blank = np.zeros((config.image_size, config.image_size, 3), dtype=np.uint8)
        self.set_task(task_id)

    # -- construction -----------------------------------------------------------------------
    def set_task(self, task_id: int) -> None:
        """(Re)build the underlying env for ``task_id`` (no-op if it is already that task)."""
        if task_id == self.task_id and self._env is not None:
            return
        self.close()
        spec = self.config.task_spec(task_id)
        silence_import_notices()  # the sim process no longer reaches it through LIBERO's benchmark module
        from libero.libero.envs import OffScreenRenderEnv  # after render setup

        cfg = self.config
        horizon = max(DEFAULT_HORIZON, cfg.max_episode_steps + cfg.settle_steps + 1)
        with contextlib.redirect_stdout(io.StringIO()):
            self._env = OffScreenRenderEnv(
                bddl_file_name=str(spec.bddl_file),
                camera_names=list(cfg.cameras),
                camera_heights=cfg.image_size,
                camera_widths=cfg.image_size,
                horizon=horizon,
                **cfg.extra_env_kwargs,
            )
        self._env.seed(cfg.seed)
        self._model_defaults: dict = {}  # the unperturbed robot base position of this env's model
        self.task_id = task_id
        self.language = spec.language

    def close(self) -> None:
        if self._env is not None:
            with contextlib.suppress(Exception):
                self._env.close()
            self._env = None

    @property
    def robosuite_env(self):
        """The wrapped robosuite environment (``env.env`` of LIBERO's ControlEnv)."""
        return self._env.env

    # -- rendering gate -----------------------------------------------------------------------
    def _install_render_gates(self) -> None:
        """Wrap each camera's sensor (observables are rebuilt by every hard reset)."""
        if not self.config.gate_rendering:
            return
        observables = self.robosuite_env._observables
        for cam in self.config.cameras:
            observable = observables[f"{cam}_image"]
            if getattr(observable._sensor, "_vlacrl_gated", False):
                continue
            observable._sensor = self._gated(observable._sensor)

    def _gated(self, sensor):
        def gated_sensor(obs_cache):
            return sensor(obs_cache) if self._render_on else self._blank

        gated_sensor.__modality__ = sensor.__modality__
        gated_sensor._vlacrl_gated = True
        return gated_sensor

    def _set_render(self, on: bool) -> None:
        self._render_on = on or not self.config.gate_rendering

    # -- episode API ----------------------------------------------------------------------------
    def reset(self, trial_id: int, task_id: int | None = None) -> dict:
        """Reset to init state ``trial_id`` of the task, then settle with zero actions.

        Follows the reference: ``seed(0)``, ``reset()``, the task's scene perturbation (robustness suites),
        ``set_init_state``, ``settle_steps`` steps of the all-zero 7-d action. Returns the observation after
        the last settle step.
        """
        if task_id is not None:
            self.set_task(task_id)
        states = self.config.init_states(self.task_id)
        env = self._env
        env.seed(self.config.seed)
        self._set_render(False)
        env.reset()  # rebuilds the MuJoCo model (hard reset): the scene perturbation is set again
        perturbations.apply(self.robosuite_env, self.config.perturbation(self.task_id), self._model_defaults)
        self._install_render_gates()
        self._set_render(self.config.settle_steps == 0)
        raw = env.set_init_state(states[trial_id])
        zero = np.zeros(ACTION_DIM)
        for i in range(self.config.settle_steps):
            self._set_render(i == self.config.settle_steps - 1)
            raw, _, _, _ = env.step(zero)
        return self._wrap_obs(raw)

    def step_chunk(self, actions: np.ndarray, record_frames: bool = False) -> ChunkOutcome:
        """Run ``C`` env steps with LIBERO-convention actions.

        Args:
            actions: [C, 7] float, already converted to LIBERO's convention.
            record_frames: render at every step and return the agentview frames (for videos).
        """
        actions = np.asarray(actions, dtype=np.float64)
        n_steps = actions.shape[0]
        terminations = np.zeros(n_steps, dtype=bool)
        frames = [] if record_frames else None
        raw = None
        for t in range(n_steps):
            self._set_render(record_frames or t == n_steps - 1)
            raw, _, done, _ = self._env.step(actions[t])
            terminations[t] = bool(done)
            if frames is not None:
                frames.append(rotate_180(raw[f"{self.config.cameras[0]}_image"]))
        return ChunkOutcome(self._wrap_obs(raw), terminations, np.stack(frames) if frames else None)

    def check_success(self) -> bool:
        return bool(self._env.check_success())

    def get_sim_state(self) -> np.ndarray:
        """Flattened MjSim state (time, qpos, qvel, ...), float64."""
        return np.array(self._env.get_sim_state())

    def set_sim_state(self, state: np.ndarray) -> None:
        """Overwrite the physics state (e.g. to place objects in a goal configuration)."""
        self._env.set_state(np.asarray(state))
        self._env.sim.forward()

    def _wrap_obs(self, raw: dict) -> dict:
        obs = {"full_image": rotate_180(raw[f"{self.config.cameras[0]}_image"]), "state": proprio_state(raw)}
        for cam in self.config.cameras[1:]:
            obs[f"{cam}_image"] = rotate_180(raw[f"{cam}_image"])
        return obs
