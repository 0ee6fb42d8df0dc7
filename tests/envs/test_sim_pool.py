"""Sizing and slicing of the sim sub-processes."""

from vlacrl.envs.libero.simulator import MEMORY_PER_SIM_GB
from vlacrl.envs.sim_pool import default_num_processes, split_envs


def test_process_count_is_capped_by_memory():
    assert default_num_processes(64, MEMORY_PER_SIM_GB, available_gb=24.0) == int(0.8 * 24.0 / MEMORY_PER_SIM_GB)  # 9
    assert default_num_processes(2, MEMORY_PER_SIM_GB, available_gb=24.0) == 2
    assert default_num_processes(8, MEMORY_PER_SIM_GB, available_gb=1.0) == 1


def test_envs_are_split_contiguously_and_completely():
    assert split_envs(5, 2) == [[0, 1, 2], [3, 4]] or split_envs(5, 2) == [[0, 1], [2, 3, 4]]
    slices = split_envs(64, 8)
    assert [len(s) for s in slices] == [8] * 8
    assert sum(slices, []) == list(range(64))
    assert split_envs(2, 4) == [[0], [1]]
