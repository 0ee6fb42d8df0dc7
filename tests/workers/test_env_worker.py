"""EnvWorker as a real Ray actor on a local cluster: stages, batches, annotated errors."""

import numpy as np
import pytest

from vlacrl.distributed.cluster import init_ray, reserve
from vlacrl.distributed.placement import resolve_placement
from vlacrl.workers.env_worker import EnvWorker
from vlacrl.workers.errors import WorkerError

pytestmark = [pytest.mark.ray, pytest.mark.libero]

ENV_CFG = {
    "task_suite_name": "libero_spatial",
    "num_envs": 4,
    "group_size": 2,
    "fixed_task_ids": [0],
    "max_episode_steps": 16,
    "only_eval": False,
    "use_ordered_reset_state_ids": True,
    "video_cfg": {"save_video": False},
    "init_params": {"camera_heights": 128, "camera_widths": 128},
    "num_processes": 1,
}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    init_ray()
    yield
    ray.shutdown()


def test_env_worker_in_ray_steps_two_pipeline_stages(ray_cluster):
    import ray

    slots = reserve(resolve_placement({"actor,env,rollout": "all"}, num_gpus=0))
    worker = ray.remote(EnvWorker).options(**slots["env"][0].ray_options).remote(ENV_CFG, 0, 1, stage_num=2)
    first = ray.get([worker.start_epoch.remote(s) for s in (0, 1)])
    assert all(b.obs["full_image"].shape == (2, 128, 128, 3) and b.rewards is None for b in first)
    assert not first[0].dones.any() and first[0].dones.shape == (2, 8)
    batch = ray.get(worker.step.remote(1, np.zeros((2, 8, 7))))
    assert batch.rewards.shape == (2, 8) and batch.episode["episode_len"].tolist() == [8, 8]
    with pytest.raises(WorkerError, match=r"env worker rank 0: EnvConfigError: actions must be \[2, C, 7\]"):
        try:
            ray.get(worker.step.remote(0, np.zeros((2, 8, 6))))
        except ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
    ray.get(worker.finish_epoch.remote(0))
    states = ray.get(worker.sampler_states.remote())
    assert len(states) == 2 and len(states[0]["ids"]) == 2
    ray.get(worker.close.remote())
