"""The probe world's simulation: a point effector moved by the xyz of each action, in this process.

Dynamics per env step, with model actions ``a`` [7] (un-normalised, the policy's convention):
``position ← clip(position + step_size · (a[:3] - action_centre), -1, 1)``; the gripper is open while
``a[6] > 0.5`` (the model's convention). The goal predicate (success) holds while the effector is inside the
task's target box with the required gripper state. ``action_centre`` is the action that means "stand still":
set it to the untrained policy's mean action so that no direction is favoured before training (docs/probe.md).

Init states: ``num_init_states`` per task, each a start position drawn uniformly in ``[-start_radius,
start_radius]^3`` (gripper open) plus distractor positions, from ``default_rng([seed, task, trial])``:
deterministic given the seed, like LIBERO's stored init states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlacrl.envs.probe import tasks
from vlacrl.envs.probe.render import draw_scene
from vlacrl.envs.simulator import ChunkOutcome

GRIPPER_QPOS_OPEN = 0.04  # finger joint positions in the 8-D state (LIBERO's Panda: about ±0.04 open, 0 closed)


@dataclass(frozen=True)
class ProbeConfig:
    """How each probe simulation is built (picklable; ``env.<split>.probe`` keys, docs/probe.md)."""

    suite: str = tasks.SUITE
    image_size: int = 256  # square images, pixels
    max_episode_steps: int = 32
    num_init_states: int = 50  # per task, as LIBERO's
    seed: int = 0  # init states come from default_rng([seed, task, trial])
    step_size: float = 0.18  # position change per unit of (action - action_centre)
    action_centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    start_radius: float = 0.2
    num_distractors: int = 3


@dataclass(frozen=True)
class InitState:
    """Start of one episode: ``position`` [3], ``distractors`` [K, 2] (x, y), their task ids [K] (colours)."""

    position: np.ndarray
    distractors: np.ndarray
    distractor_tasks: np.ndarray


def init_state(config: ProbeConfig, task_id: int, trial_id: int) -> InitState:
    """Init state ``trial_id`` of ``task_id`` (the same on every machine for the same seed)."""
    if not 0 <= trial_id < config.num_init_states:
        raise ValueError(f"trial id {trial_id} outside [0, {config.num_init_states})")
    rng = np.random.default_rng([config.seed, task_id, trial_id])
    position = rng.uniform(-config.start_radius, config.start_radius, size=3)
    distractors = rng.uniform(-0.9, 0.9, size=(config.num_distractors, 2))
    others = [t for t in range(tasks.NUM_TASKS) if t != task_id]
    colours = rng.choice(others, size=config.num_distractors, replace=False)
    return InitState(position, distractors, colours)


class ProbeSim:
    """One probe env (same methods as :class:`vlacrl.envs.libero.sim.LiberoSim`)."""

    def __init__(self, config: ProbeConfig, task_id: int):
        self.config = config
        self.centre = np.asarray(config.action_centre, dtype=np.float64)
        self.set_task(task_id)

    def set_task(self, task_id: int) -> None:
        self.task_id = int(task_id)
        self.task = tasks.task(self.task_id)
        self.language = self.task.language
        self.reset(0)

    def reset(self, trial_id: int, task_id: int | None = None) -> dict:
        """Start init state ``trial_id`` (of ``task_id`` when given); returns the first observation."""
        if task_id is not None and int(task_id) != self.task_id:
            self.task_id, self.task = int(task_id), tasks.task(int(task_id))
            self.language = self.task.language
        start = init_state(self.config, self.task_id, int(trial_id))
        self.position = start.position.copy()
        self.gripper_open = True
        self.distractors = start.distractors
        self.distractor_colours = [tasks.task(int(t)).colour for t in start.distractor_tasks]
        self.steps = 0
        return self._obs()

    def step_chunk(self, actions: np.ndarray, record_frames: bool = False) -> ChunkOutcome:
        """Run ``C`` env steps with model-convention actions [C, 7]."""
        actions = np.asarray(actions, dtype=np.float64)
        terminations = np.zeros(actions.shape[0], dtype=bool)
        frames = []
        for t, action in enumerate(actions):
            self.position = np.clip(self.position + self.config.step_size * (action[:3] - self.centre), -1.0, 1.0)
            self.gripper_open = bool(action[6] > 0.5)
            self.steps += 1
            terminations[t] = self.check_success()
            if record_frames:
                frames.append(self.image())
        return ChunkOutcome(self._obs(), terminations, np.stack(frames) if record_frames else None)

    def check_success(self) -> bool:
        return self.task.contains(self.position, self.gripper_open)

    def image(self) -> np.ndarray:
        """[H, W, 3] uint8 view of the current scene."""
        return draw_scene(
            self.config.image_size, self.task, position=self.position, gripper_open=self.gripper_open,
            distractors=self.distractors, distractor_colours=self.distractor_colours,
        )  # fmt: skip

    def state(self) -> np.ndarray:
        """8-D state as LIBERO's: position (3), orientation (3, always 0), two finger positions (2); float32."""
        finger = GRIPPER_QPOS_OPEN if self.gripper_open else 0.0
        return np.array([*self.position, 0.0, 0.0, 0.0, finger, -finger], dtype=np.float32)

    def _obs(self) -> dict:
        return {"full_image": self.image(), "state": self.state()}

    def get_sim_state(self) -> np.ndarray:
        """[5] float64: position (3), gripper open (0/1), steps since the reset."""
        return np.array([*self.position, float(self.gripper_open), float(self.steps)])

    def set_sim_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, dtype=np.float64)
        self.position, self.gripper_open, self.steps = state[:3].copy(), bool(state[3] > 0.5), int(state[4])

    def close(self) -> None:
        """Nothing to release."""
