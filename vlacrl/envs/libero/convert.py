"""Conversions between the policy's conventions and LIBERO's (docs/libero.md)."""

from __future__ import annotations

import math

import numpy as np

ACTION_DIM = 7
GRIPPER_DIM = 6


def model_to_env_actions(actions: np.ndarray) -> np.ndarray:
    """Map un-normalised model actions to LIBERO actions.

    Args:
        actions: [..., 7] float: 6 OSC_POSE deltas then the gripper value in [-1, 1]
            (model convention: > 0.5 open, < 0.5 close).
    Returns:
        [..., 7] float64: arm dims unchanged; gripper ``-sign(2g - 1)`` (LIBERO: -1 open, +1 close,
        and exactly 0 when g == 0.5).
    """
    actions = np.asarray(actions, dtype=np.float64)
    if actions.shape[-1] != ACTION_DIM:
        raise ValueError(f"actions must end in dim {ACTION_DIM}, got shape {actions.shape}")
    out = actions.copy()
    out[..., GRIPPER_DIM] = -np.sign(2.0 * actions[..., GRIPPER_DIM] - 1.0)
    return out


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) of an (x, y, z, w) quaternion, robosuite's formula (w clipped to [-1, 1])."""
    x, y, z, w = (float(v) for v in quat)
    w = min(max(w, -1.0), 1.0)
    den = math.sqrt(1.0 - w * w)
    if math.isclose(den, 0.0):
        return np.zeros(3)
    return np.array([x, y, z]) * 2.0 * math.acos(w) / den


def rotate_180(image: np.ndarray) -> np.ndarray:
    """Rotate an [H, W, 3] camera image by 180° (``img[::-1, ::-1]``), as the policy was trained."""
    return np.ascontiguousarray(image[::-1, ::-1])


def proprio_state(raw_obs: dict) -> np.ndarray:
    """8-d state: eef position (3), eef axis-angle (3), gripper qpos (2); float32."""
    return np.concatenate(
        [raw_obs["robot0_eef_pos"], quat_to_axis_angle(raw_obs["robot0_eef_quat"]), raw_obs["robot0_gripper_qpos"]]
    ).astype(np.float32)
