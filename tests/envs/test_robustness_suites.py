"""The paper's robustness suites (libero_spatial_cam2 / light2 / pos2) on real LIBERO (OSMesa): LIBERO-Spatial's
tasks and init states, the camera / lights / robot base changed exactly as configured, other frames."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.libero import perturbations, suites
from vlacrl.envs.libero.setup import ensure_libero_ready
from vlacrl.envs.libero.sim import LiberoSim, SimConfig
from vlacrl.envs.libero.simulator import LiberoSimulator

pytestmark = pytest.mark.libero
VARIANTS = ("libero_spatial_cam2", "libero_spatial_light2", "libero_spatial_pos2")
#: the reference's agentview pose of task 1 in libero_spatial_cam2 (continual-vla-rl,
#: examples/embodiment/config/env/eval/libero_spatial_cam2.yaml)
CAM2_TASK1 = {"pos": (0.6586, 0.05, 1.6104), "quat": (0.638, 0.305, 0.304, 0.638)}
DEFAULT_AGENTVIEW_POS = (0.65861317, 0.0, 1.61035002)
DEFAULT_ROBOT_BASE = (-0.66, 0.0, 0.912)


def sim_config(suite: str) -> SimConfig:
    """The suite's SimConfig as the env worker builds it from the composed eval config, at 128 px."""
    tag = suite.rsplit("_", 1)[1]
    env_cfg = OmegaConf.to_container(compose(f"crl_experiment/libero_spatial_grpo_openvlaoft_{tag}").env.eval,
                                      resolve=True)  # fmt: skip
    env_cfg["init_params"].update(camera_heights=128, camera_widths=128)
    return LiberoSimulator().sim_config(env_cfg)


@pytest.fixture(scope="module")
def frames_and_sims():
    """Task 1, init state 0, no settle steps: the base suite's and each variant's first frame and model."""
    ensure_libero_ready()
    out = {}
    for suite in ("libero_spatial", *VARIANTS):
        config = sim_config(suite) if suite in VARIANTS else SimConfig(suite=suite, image_size=128)
        sim = LiberoSim(SimConfig(**{**config.__dict__, "settle_steps": 0}), 1)
        sim.reset(0)
        obs = sim.reset(0)  # a second episode: the perturbation is applied once, not accumulated
        model = sim.robosuite_env.sim.model
        base = model.body_name2id(sim.robosuite_env.robots[0].robot_model.root_body)
        out[suite] = {
            "frame": obs["full_image"], "state": sim.get_sim_state(), "eef": obs["state"][:3].copy(),
            "cam_pos": model.cam_pos[model.camera_name2id("agentview")].copy(),
            "cam_quat": model.cam_quat[model.camera_name2id("agentview")].copy(),
            "light_diffuse": model.light_diffuse.copy(), "light_pos": model.light_pos.copy(),
            "robot_base": model.body_pos[base].copy(),
        }  # fmt: skip
        sim.close()
    return out


def test_variants_reuse_libero_spatials_tasks_and_init_states():
    for suite in VARIANTS:
        assert suites.SUITE_TASK_COUNTS[suite] == 10 and suites.base_suite(suite) == "libero_spatial"
        for task in (0, 9):
            mine, base = suites.task_spec(suite, task), suites.task_spec("libero_spatial", task)
            assert (mine.language, mine.bddl_file, mine.suite) == (base.language, base.bddl_file, suite)
            np.testing.assert_array_equal(suites.init_states(suite, task), suites.init_states("libero_spatial", task))


def test_each_variant_changes_exactly_its_part_of_the_scene(frames_and_sims):
    base, cam, light, pos = (frames_and_sims[s] for s in ("libero_spatial", *VARIANTS))
    np.testing.assert_allclose(base["cam_pos"], DEFAULT_AGENTVIEW_POS)
    np.testing.assert_allclose(base["robot_base"], DEFAULT_ROBOT_BASE)
    np.testing.assert_allclose(cam["cam_pos"], CAM2_TASK1["pos"])
    np.testing.assert_allclose(cam["cam_quat"], CAM2_TASK1["quat"])
    np.testing.assert_allclose(light["light_diffuse"], [[0.45] * 3, [0.55, 0.48, 0.36]])
    np.testing.assert_allclose(light["light_pos"][0], [1.5, -1.0, 3.0])
    np.testing.assert_allclose(pos["robot_base"], np.add(DEFAULT_ROBOT_BASE, [0.0, -0.04, 0.0]))  # task 1, once
    for variant, unchanged in ((cam, ("light_diffuse", "robot_base")), (light, ("cam_pos", "robot_base")),
                               (pos, ("cam_pos", "light_diffuse"))):  # fmt: skip
        for key in unchanged:
            np.testing.assert_array_equal(variant[key], base[key])
        np.testing.assert_array_equal(variant["state"], base["state"])  # joints and objects as stored
        assert np.abs(variant["frame"].astype(int) - base["frame"].astype(int)).mean() > 1.0  # another picture
    np.testing.assert_allclose(pos["eef"] - base["eef"], [0.0, -0.04, 0.0], atol=1e-6)  # the arm moved with its base


def test_bad_perturbations_are_config_errors_naming_the_key():
    with pytest.raises(EnvConfigError, match=r"camera_overrides_per_task\[0\]\.agentview\.pos must be a list of 3"):
        perturbations.per_task({"camera_overrides_per_task": [{"agentview": {"pos": [1, 2]}}]}, 10)
    with pytest.raises(EnvConfigError, match="11 entries for a suite of 10"):
        perturbations.per_task({"light_overrides_per_task": [None] * 11}, 10)
    with pytest.raises(EnvConfigError, match="unknown field"):
        perturbations.per_task({"light_overrides_per_task": [{"light1": {"colour": [1, 1, 1]}}]}, 10)
    assert perturbations.per_task({"camera_heights": 256}, 10) == ()
