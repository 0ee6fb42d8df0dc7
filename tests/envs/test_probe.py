"""The probe world (vlacrl/envs/probe): dynamics, tasks, images, init states, the expert, demo files, the
simulator contract and its config checks. No Ray, no model."""

import numpy as np
import pytest

from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.probe import tasks
from vlacrl.envs.probe.expert import MAX_SPEED, expert_action, expert_episode, push_direction
from vlacrl.envs.probe.world import ProbeConfig, ProbeSim, init_state
from vlacrl.envs.registry import get_simulator, simulator_for, simulator_of_suite
from vlacrl.envs.vector_env import VectorEnv, VectorEnvConfig

CPU_PROBE = ProbeConfig(action_centre=(0.075, 0.075, 0.025), step_size=0.05)


def test_one_step_moves_by_step_size_times_the_offset_from_the_centre():
    sim = ProbeSim(CPU_PROBE, 0)
    start = sim.position.copy()
    action = np.array([0.575, 0.075, -0.475, 0.3, 0.3, 0.3, 0.0])  # +0.5 x, 0 y, -0.5 z, gripper closed
    outcome = sim.step_chunk(action[None])
    np.testing.assert_allclose(sim.position, start + 0.05 * np.array([0.5, 0.0, -0.5]))
    assert not sim.gripper_open and outcome.obs["state"][6] == 0.0
    assert outcome.obs["full_image"].shape == (256, 256, 3) and outcome.obs["full_image"].dtype == np.uint8


def test_positions_clip_at_the_walls():
    sim = ProbeSim(CPU_PROBE, 0)
    sim.step_chunk(np.tile([1.0, 1.0, 1.0, 0, 0, 0, 1.0], (200, 1)))
    np.testing.assert_allclose(sim.position, [1.0, 1.0, 1.0])


@pytest.mark.parametrize("task_id", range(tasks.NUM_TASKS))
def test_the_expert_reaches_every_task_and_standing_still_reaches_none(task_id):
    for trial in range(5):
        _, actions, success = expert_episode(CPU_PROBE, task_id, trial)
        assert success and actions.shape[1] == 7 and len(actions) >= 16
    sim = ProbeSim(CPU_PROBE, task_id)
    still = np.array([*CPU_PROBE.action_centre, 0, 0, 0, 1.0 if tasks.task(task_id).gripper_open is not False else 0])
    assert not sim.step_chunk(np.tile(still, (32, 1))).terminations.any()  # starts are outside every target


def test_expert_actions_stay_inside_the_action_bins():
    for task_id in range(tasks.NUM_TASKS):
        offset = expert_action(CPU_PROBE, task_id)[:3] - np.asarray(CPU_PROBE.action_centre)
        assert np.all(np.abs(offset) <= MAX_SPEED + 1e-12)
        assert np.any(push_direction(tasks.task(task_id)) != 0)


def test_opposite_tasks_conflict():
    right, left = tasks.task(tasks.ORDER.index("right")), tasks.task(tasks.ORDER.index("left"))
    for x in np.linspace(-1, 1, 41):
        position = np.array([x, 0.0, 0.0])
        assert not (right.contains(position, True) and left.contains(position, True))
    gripper_task = tasks.task(tasks.ORDER.index("right_open"))
    assert gripper_task.contains(np.array([0.9, 0, 0]), True) and not gripper_task.contains(
        np.array([0.9, 0, 0]), False
    )


def test_init_states_are_deterministic_and_distinct():
    a, b = init_state(CPU_PROBE, 1, 3), init_state(CPU_PROBE, 1, 3)
    np.testing.assert_array_equal(a.position, b.position)
    assert not np.array_equal(a.position, init_state(CPU_PROBE, 1, 4).position)
    assert np.all(np.abs(a.position) <= CPU_PROBE.start_radius)
    with pytest.raises(ValueError, match="trial id 50"):
        init_state(CPU_PROBE, 1, 50)


def test_sim_state_round_trip_reproduces_the_image():
    sim = ProbeSim(CPU_PROBE, 6)
    sim.reset(2)
    sim.step_chunk(np.tile([0.6, 0.6, 0.3, 0, 0, 0, 0.0], (5, 1)))
    state, image = sim.get_sim_state(), sim.image()
    other = ProbeSim(CPU_PROBE, 6)
    other.reset(2)
    other.set_sim_state(state)
    np.testing.assert_array_equal(other.image(), image)


def test_targets_are_drawn_so_tasks_look_different():
    images = [ProbeSim(CPU_PROBE, t).image() for t in (0, 1, 3)]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[0], images[2])


def test_vector_env_runs_the_expert_to_success_and_standing_still_to_failure():
    from vlacrl.envs.probe.expert import expert_chunk

    simulator = get_simulator("probe")
    config = VectorEnvConfig(num_envs=4, group_size=1, task_ids=[0, 1], mode="eval", sim=CPU_PROBE)
    with VectorEnv(config, simulator) as env:
        obs = env.start_epoch()
        for _ in range(4):
            chunks = np.stack([expert_chunk(CPU_PROBE, int(t), s[:3], 8) for t, s in zip(env.task_ids, obs["state"])])
            obs, _, _, _, infos = env.chunk_step(chunks)
        assert np.all(infos["episode"]["success_once"])
        env.finish_epoch()
        env.start_epoch()
        still = np.tile([*CPU_PROBE.action_centre, 0, 0, 0, 1.0], (4, 8, 1))
        for _ in range(4):
            _, _, _, _, infos = env.chunk_step(still)
        assert not np.any(infos["episode"]["success_once"])


def test_simulator_contract_and_config_errors():
    simulator = simulator_for({"simulator_type": "probe"})
    assert simulator.name == "probe" and simulator_of_suite("probe") is simulator
    assert simulator_of_suite("libero_spatial").name == "libero"
    assert simulator.task_language("probe", 0) == tasks.task(0).language
    world = simulator.sim_config({"task_suite_name": "probe", "max_episode_steps": 16, "probe": {"step_size": 0.05}})
    assert world.step_size == 0.05 and world.max_episode_steps == 16
    with pytest.raises(EnvConfigError, match="unknown key"):
        simulator.sim_config({"task_suite_name": "probe", "probe": {"speed": 1}})
    with pytest.raises(EnvConfigError, match="3 values"):
        simulator.sim_config({"task_suite_name": "probe", "probe": {"action_centre": [0, 0]}})
    with pytest.raises(EnvConfigError, match="out of range|task id"):
        simulator.validate_task_ids("probe", [10])
    with pytest.raises(EnvConfigError, match="unknown simulator"):
        get_simulator("isaac")


def test_expert_demo_files_are_replayable(tmp_path):
    from vlacrl.data import ReplayDataset, cache_file_name
    from vlacrl.data.expert_demos import ExpertDemoError, write_expert_demos

    paths = write_expert_demos(CPU_PROBE, [0, 2], 2, tmp_path)
    assert [p.name for p in paths] == [cache_file_name(tasks.task(t).language) for t in (0, 2)]
    dataset = ReplayDataset(paths, demos_per_task=None, num_action_chunks=8)
    item = dataset[0]
    assert item["image"].shape == (256, 256, 3) and item["actions"].shape == (8, 7)
    assert item["task_description"].lower() == tasks.task(0).language
    with pytest.raises(ExpertDemoError, match="demos per task"):
        write_expert_demos(CPU_PROBE, [0], 51, tmp_path)
