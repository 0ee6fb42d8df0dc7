"""One real LIBERO simulation (OSMesa): resets, observations, success/reward and parity with the stock env."""

import numpy as np
import pytest

from vlacrl.envs.libero import suites
from vlacrl.envs.libero.setup import ensure_libero_ready
from vlacrl.envs.libero.sim import LiberoSim, SimConfig
from vlacrl.envs.libero.vector_env import LiberoVectorEnv
from vlacrl.envs.vector_env import VectorEnvConfig

pytestmark = pytest.mark.libero
SUITE, TASK = "libero_spatial", 0
OPEN = np.array([0, 0, 0, 0, 0, 0, -1.0])  # LIBERO convention: -1 opens the gripper


@pytest.fixture(scope="module")
def unsettled_sim():
    """A sim without settle steps, so the state after reset is exactly the stored init state."""
    ensure_libero_ready()
    sim = LiberoSim(SimConfig(suite=SUITE, settle_steps=0), TASK)
    yield sim
    sim.close()


def test_reset_restores_the_stored_init_state(unsettled_sim):
    for trial in (3, 41):
        unsettled_sim.reset(trial)
        np.testing.assert_array_equal(unsettled_sim.get_sim_state(), suites.init_states(SUITE, TASK)[trial])


def test_observation_is_the_agentview_rotated_180(unsettled_sim):
    obs = unsettled_sim.reset(5)
    assert obs["full_image"].shape == (256, 256, 3) and obs["full_image"].dtype == np.uint8
    assert obs["state"].shape == (8,) and obs["state"].dtype == np.float32
    raw = unsettled_sim.robosuite_env.sim.render(camera_name="agentview", width=256, height=256)
    np.testing.assert_array_equal(obs["full_image"], raw[::-1, ::-1])
    assert not np.array_equal(obs["full_image"], raw)  # the rotation is not a no-op
    assert obs["full_image"].std() > 10  # a real scene, not a blank frame


def _teleport_bowl_onto_plate(sim: LiberoSim) -> None:
    """Put the target bowl 5 cm above the plate through the sim state (goal: on bowl_1 plate_1)."""
    data = sim.robosuite_env.sim.data
    qpos = data.get_joint_qpos("akita_black_bowl_1_joint0").copy()
    qpos[:3] = data.get_body_xpos("plate_1_main") + np.array([0.0, 0.0, 0.05])
    data.set_joint_qpos("akita_black_bowl_1_joint0", qpos)
    sim.robosuite_env.sim.forward()


def test_success_after_goal_state_and_reward_plus_five_exactly_once():
    config = VectorEnvConfig(num_envs=1, group_size=1, task_ids=[TASK], in_process=True,
                             sim=SimConfig(suite=SUITE, max_episode_steps=64))  # fmt: skip
    with LiberoVectorEnv(config) as env:
        env.start_epoch()
        hold = np.zeros((1, 8, 7))
        hold[..., 6] = 1.0  # model convention: open
        _, rewards, terms, _, infos = env.chunk_step(hold)
        assert not terms.any() and not rewards.any() and not infos["episode"]["success_once"][0]
        sim = env.pool.sims[0]
        _teleport_bowl_onto_plate(sim)
        assert not sim.check_success()  # in the air: not yet on the plate
        chunks = [env.chunk_step(hold) for _ in range(3)]
    rewards = np.concatenate([c[1][0] for c in chunks])
    terms = np.concatenate([c[2][0] for c in chunks])
    first = int(np.argmax(terms))
    assert terms[first] and not terms[:first].any()
    assert rewards[first] == 5.0 and np.count_nonzero(rewards) == 1
    episode = chunks[-1][4]["episode"]
    assert episode["success_once"][0] and episode["task_0_success"][0] and episode["return"][0] == 5.0


def test_gated_env_matches_the_stock_env_exactly():
    """Same init state and action chunks: identical sim states and chunk-end agentview images."""
    ensure_libero_ready()
    from libero.libero.envs import OffScreenRenderEnv

    spec = suites.task_spec(SUITE, TASK)
    init = suites.init_states(SUITE, TASK)[7]
    stock = OffScreenRenderEnv(bddl_file_name=str(spec.bddl_file), camera_heights=256, camera_widths=256)
    ours = LiberoSim(SimConfig(suite=SUITE), TASK)
    try:
        stock.seed(0)
        stock.reset()
        stock.set_init_state(init)
        for _ in range(10):
            raw, _, _, _ = stock.step(np.zeros(7))
        obs = ours.reset(7)
        np.testing.assert_array_equal(obs["full_image"], raw["agentview_image"][::-1, ::-1])
        rng = np.random.default_rng(0)
        for _ in range(3):
            chunk = rng.uniform(-1, 1, size=(8, 7))
            for action in chunk:
                raw, _, done, _ = stock.step(action)
            outcome = ours.step_chunk(chunk)
            np.testing.assert_array_equal(ours.get_sim_state(), stock.get_sim_state())
            np.testing.assert_array_equal(outcome.obs["full_image"], raw["agentview_image"][::-1, ::-1])
            assert outcome.terminations[-1] == done
    finally:
        stock.close()
        ours.close()
