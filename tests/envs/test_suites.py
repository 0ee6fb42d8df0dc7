"""Suites load with their task counts; bad suite or task ids give clear errors."""

import pytest

from vlacrl.envs.errors import EnvConfigError
from vlacrl.envs.libero import suites


@pytest.mark.libero
@pytest.mark.parametrize("suite,count", sorted(suites.SUITE_TASK_COUNTS.items()))
def test_every_suite_loads_with_its_task_count(suite, count):
    assert suites.num_tasks(suite) == count
    states = suites.init_states(suite, count - 1)
    assert states.shape[0] == 50 and states.dtype.kind == "f"
    assert suites.task_spec(suite, count - 1).bddl_file.exists()


@pytest.mark.libero
def test_spatial_task_0_is_the_reference_task():
    spec = suites.task_spec("libero_spatial", 0)
    assert spec.language == "pick up the black bowl between the plate and the ramekin and place it on the plate"


def test_unknown_suite_is_named_with_the_choices():
    with pytest.raises(EnvConfigError, match="unknown LIBERO suite 'libero_spatail'.*libero_spatial"):
        suites.validate_suite("libero_spatail")


def test_task_id_out_of_range():
    with pytest.raises(EnvConfigError, match=r"\[10\] out of range for libero_spatial: it has tasks 0..9"):
        suites.validate_task_ids("libero_spatial", [3, 10])
    with pytest.raises(EnvConfigError, match="out of range"):
        suites.task_spec("libero_goal", -1)
