"""Demo files recorded from the probe world's scripted expert (the probe's stand-in for LIBERO's human demos).

One ``<instruction>.hdf5`` per task in the replay layout (:mod:`vlacrl.data.formats`): what the SFT base is
trained on (:mod:`vlacrl.training.oft_sft`) and what ER, DER and iRe-VLA replay (``crl.dataset_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vlacrl.data.formats import Demo, cache_file_name
from vlacrl.data.logit_cache import write_cache_file


class ExpertDemoError(ValueError):
    """The expert cannot record what was asked (too many demos, or an episode that did not succeed)."""


def write_expert_demos(world, task_ids: Sequence[int], per_task: int, out_dir: str | Path) -> list[Path]:
    """``per_task`` successful expert demos of each task (init states 0, 1, ...) → ``out_dir/<instruction>.hdf5``.

    Args:
        world: the probe world's :class:`~vlacrl.envs.probe.world.ProbeConfig` (the demos' step size, episode
            length and image size are the ones the policy will see).
    Returns:
        the written files, in ``task_ids`` order.
    """
    from vlacrl.envs.probe import tasks as probe_tasks
    from vlacrl.envs.probe.expert import expert_episode

    if not 0 < per_task <= world.num_init_states:
        raise ExpertDemoError(f"demos per task must be in [1, {world.num_init_states}], got {per_task}")
    paths = []
    for task_id in task_ids:
        demos = []
        for trial in range(per_task):
            images, actions, success = expert_episode(world, task_id, trial)
            if not success:
                raise ExpertDemoError(
                    f"the probe expert did not reach task {task_id} from init state {trial} within "
                    f"{world.max_episode_steps} steps (step_size {world.step_size} too small for the episode length?)"
                )
            demos.append((f"demo_{trial}", Demo(actions=actions, images=images)))
        instruction = probe_tasks.task(int(task_id)).language
        paths.append(write_cache_file(Path(out_dir) / cache_file_name(instruction), demos, instruction=instruction))
    return paths
