"""A scripted expert for the probe world: it heads straight for the task's target box.

It plays the part of LIBERO's human demonstrations: ``vlacrl-rollout --simulator probe --policy expert`` records
its episodes as demo files (:mod:`vlacrl.data`) for the methods that replay demos (ER, DER, iRe-VLA).
"""

from __future__ import annotations

import numpy as np

from vlacrl.envs.probe import tasks
from vlacrl.envs.probe.world import ProbeConfig

#: |action - action_centre| on the axes a task constrains: inside the action bins' range ([q01, q99] of the tiny
#: checkpoint's statistics is about centre ± 0.8), so the expert's actions survive tokenisation
MAX_SPEED = 0.75


def push_direction(task: tasks.ProbeTask) -> np.ndarray:
    """[3] in {-1, 0, 1}: toward the workspace wall the task's box touches, 0 on axes the task leaves free.

    Every probe box reaches a wall (``tasks.LOW``/``HIGH``), so pushing into it reaches the box and stays there
    (positions clip at the walls): the expert's action for a task is one constant.
    """
    low, high = np.asarray(task.low), np.asarray(task.high)
    return np.where(low > tasks.LOW, 1.0, 0.0) - np.where(high < tasks.HIGH, 1.0, 0.0)


def expert_action(config: ProbeConfig, task_id: int, position: np.ndarray | None = None) -> np.ndarray:
    """[7] model-convention action: ``action_centre + MAX_SPEED · push_direction`` on xyz, rotation 0, gripper
    1.0 (open) unless the task needs it closed. ``position`` is not needed (the expert is open-loop)."""
    task = tasks.task(task_id)
    action = np.zeros(7)
    action[:3] = np.asarray(config.action_centre) + MAX_SPEED * push_direction(task)
    action[6] = 0.0 if task.gripper_open is False else 1.0
    return action


def expert_chunk(config: ProbeConfig, task_id: int, position: np.ndarray, chunk: int) -> np.ndarray:
    """[chunk, 7] actions: the expert is open-loop, so its chunk is :func:`expert_action` repeated (``position``
    is accepted for the policy interface and not needed)."""
    return np.tile(expert_action(config, task_id, position), (chunk, 1))


def expert_episode(config: ProbeConfig, task_id: int, trial_id: int, min_steps: int = 16):
    """One expert demonstration from init state ``trial_id``, step by step until success and ``min_steps``
    (after reaching the target the expert holds still there, so every demo has ``min_steps - 7`` chunk samples).

    Returns:
        images [T, H, W, 3] uint8 (the observation before each action), actions [T, 7] float32 (model
        convention, gripper 1 = open), and whether the episode ended in success.
    """
    from vlacrl.envs.probe.world import ProbeSim

    sim = ProbeSim(config, task_id)
    obs = sim.reset(trial_id)
    images, actions, success = [], [], False
    for _ in range(config.max_episode_steps):
        action = expert_action(config, task_id, sim.position)
        images.append(obs["full_image"])
        actions.append(action)
        outcome = sim.step_chunk(action[None])
        obs, success = outcome.obs, bool(outcome.terminations[-1])
        if success and len(actions) >= min_steps:
            break
    return np.stack(images), np.stack(actions).astype(np.float32), success
