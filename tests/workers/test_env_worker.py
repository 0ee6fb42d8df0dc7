"""EnvWorker as a real Ray actor on a local cluster: stages, batches, annotated errors, sim restarts."""

import os
import signal

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


def test_env_worker_restarts_a_killed_sim_and_reports_restarts_and_memory(ray_cluster):
    import ray

    slots = reserve(resolve_placement({"actor,env,rollout": "all"}, num_gpus=0))
    cfg = dict(ENV_CFG, num_envs=2, max_env_restarts=1)  # one stage, one sim process with 2 envs
    worker = ray.remote(EnvWorker).options(**slots["env"][0].ray_options).remote(cfg, 0, 1)
    ray.get(worker.start_epoch.remote(0))
    [[pid]] = ray.get(worker.sim_pids.remote())
    os.kill(pid, signal.SIGKILL)
    batch = ray.get(worker.step.remote(0, np.zeros((2, 8, 7))))
    assert batch.rewards.shape == (2, 8) and batch.dones.shape == (2, 8)
    assert batch.episode["episode_len"].tolist() == [8, 8] and batch.obs["full_image"].shape == (2, 128, 128, 3)
    metrics = ray.get(worker.pop_metrics.remote())
    assert metrics["env/restarts"] == 1 and metrics["env/restarts_total"] == 1
    assert metrics["memory/env_worker_rss_mb"] > 50 and metrics["memory/env_sims_rss_mb"] > 100
    [[new_pid]] = ray.get(worker.sim_pids.remote())
    assert new_pid != pid
    assert ray.get(worker.pop_metrics.remote())["env/restarts"] == 0  # per call; the total stays
    ray.get(worker.close.remote())
    ray.kill(worker)
