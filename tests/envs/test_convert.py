"""Action conversion (docs/libero.md), proprio state and image rotation, on hand-computed values."""

import numpy as np
import pytest

from vlacrl.envs.libero.convert import model_to_env_actions, proprio_state, quat_to_axis_angle, rotate_180


def test_gripper_maps_to_libero_convention_and_arm_passes_through():
    model = np.array(
        [
            [0.1, -0.2, 0.3, 0.01, -0.02, 0.03, 0.99608],  # > 0.5: open -> -1
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.99608],  # < 0.5: close -> +1
            [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # exactly 0.5 -> 0
            [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.49],  # just below 0.5 -> close
        ]
    )
    env = model_to_env_actions(model)
    np.testing.assert_array_equal(env[:, :6], model[:, :6])
    np.testing.assert_array_equal(env[:, 6], [-1.0, 1.0, 0.0, 1.0])


def test_conversion_keeps_batch_and_chunk_axes():
    actions = np.zeros((3, 8, 7))
    actions[1, 4, 6] = 1.0
    out = model_to_env_actions(actions)
    assert out.shape == (3, 8, 7)
    assert out[1, 4, 6] == -1.0 and out[0, 0, 6] == 1.0


def test_conversion_rejects_wrong_action_dim():
    with pytest.raises(ValueError, match="dim 7"):
        model_to_env_actions(np.zeros((2, 6)))


def test_axis_angle_of_known_rotations():
    # 90 degrees about z: quat (x, y, z, w) = (0, 0, sin 45, cos 45)
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quat_to_axis_angle(np.array([0, 0, s, s])), [0, 0, np.pi / 2], atol=1e-12)
    # 180 degrees about x
    np.testing.assert_allclose(quat_to_axis_angle(np.array([1.0, 0, 0, 0])), [np.pi, 0, 0], atol=1e-12)
    # identity -> zero vector; w slightly above 1 is clipped
    np.testing.assert_array_equal(quat_to_axis_angle(np.array([0, 0, 0, 1.0000001])), np.zeros(3))


def test_proprio_state_layout():
    raw = {
        "robot0_eef_pos": np.array([1.0, 2.0, 3.0]),
        "robot0_eef_quat": np.array([0.0, 0.0, 0.0, 1.0]),
        "robot0_gripper_qpos": np.array([0.04, -0.04]),
    }
    state = proprio_state(raw)
    assert state.dtype == np.float32 and state.shape == (8,)
    np.testing.assert_allclose(state, [1, 2, 3, 0, 0, 0, 0.04, -0.04])


def test_rotate_180_is_both_flips():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = rotate_180(img)
    assert out[0, 0].tolist() == img[1, 2].tolist() and out[1, 2].tolist() == img[0, 0].tolist()
    np.testing.assert_array_equal(rotate_180(out), img)
