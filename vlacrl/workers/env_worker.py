"""EnvWorker: the envs of one env rank (any simulator: LIBERO, the probe world), split into pipeline stages.

With ``pipeline_stage_num = S`` the worker's envs form S independent vectorised env sets; while the
rollout worker infers actions for stage s, this worker steps stage s-1, so simulation and inference
overlap. Stage ``s`` of rank ``r`` samples init states as rank ``r·S + s`` of ``W·S``.

A plain class (testable without Ray); the launcher wraps it with ``ray.remote``.

A sim sub-process that crashes is restarted by its :class:`VectorEnv` (docs/reliability.md);
:meth:`EnvWorker.pop_metrics` reports the restarts and the memory of the worker and its sims.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from vlacrl.envs.from_config import make_vector_env
from vlacrl.metrics.memory import children_rss_mb, rss_mb
from vlacrl.workers.errors import annotated
from vlacrl.workers.info import WorkerInfo, group_work

logger = logging.getLogger(__name__)


@dataclass
class EnvBatch:
    """What the env side sends to the rollout side after a reset or an action chunk.

    Attributes:
        obs: ``full_image`` [b, 256, 256, 3] uint8, ``state`` [b, 8] float32, ``task_descriptions`` [b].
        rewards: [b, C] float32 per env step; None on the reset batch.
        dones: [b, C] bool (terminations | truncations); all False on the reset batch.
        episode: per-env episode metrics after this chunk ([b] arrays), None on the reset batch.
        step_seconds: wall time of the env work for this batch.
    """

    obs: dict
    rewards: np.ndarray | None
    dones: np.ndarray
    episode: dict | None
    step_seconds: float


class EnvWorker(WorkerInfo):
    """Owns ``stage_num`` :class:`~vlacrl.envs.vector_env.VectorEnv` sets of one env rank."""

    role = "env"

    def __init__(
        self,
        env_cfg: Mapping[str, Any],
        rank: int,
        world_size: int,
        *,
        stage_num: int = 1,
        chunk: int = 8,
        use_gpu: bool = False,
        save_video_rank: int | None = 0,
    ):
        self.rank, self.world_size, self.stage_num, self.chunk = rank, world_size, stage_num, chunk
        total = int(env_cfg["num_envs"])
        per_stage = total // world_size // stage_num
        if per_stage * world_size * stage_num != total or per_stage < 1:
            raise ValueError(f"{total} envs cannot be split over {world_size} env workers x {stage_num} stages")
        self.envs = []
        for stage in range(stage_num):
            record = save_video_rank is None or (rank == save_video_rank and stage == 0)
            env = make_vector_env(
                env_cfg,
                per_stage,
                rank=rank * stage_num + stage,
                world_size=world_size * stage_num,
                record_video=record,
                cuda_device=0 if use_gpu else None,
            )
            self.envs.append(env)
        self.num_envs_per_stage = per_stage
        self.env_seconds = 0.0
        self._restarts_reported = 0
        logger.info("env rank %d: %d stage(s) x %d envs", rank, stage_num, per_stage)

    @annotated
    @group_work
    def start_epoch(self, stage: int) -> EnvBatch:
        """Reset every env of ``stage`` to this epoch's init states."""
        start = time.perf_counter()
        obs = self.envs[stage].start_epoch()
        dones = np.zeros((self.num_envs_per_stage, self.chunk), dtype=bool)
        seconds = time.perf_counter() - start
        self.env_seconds += seconds
        return EnvBatch(obs, None, dones, None, seconds)

    @annotated
    @group_work
    def step(self, stage: int, actions: np.ndarray) -> EnvBatch:
        """Execute one chunk of model actions [b, C, 7] in ``stage``."""
        start = time.perf_counter()
        obs, rewards, terms, truncs, infos = self.envs[stage].chunk_step(np.asarray(actions))
        episode = infos["final_info"]["episode"] if "final_info" in infos else infos["episode"]
        seconds = time.perf_counter() - start
        self.env_seconds += seconds
        return EnvBatch(obs, rewards, terms | truncs, episode, seconds)

    @annotated
    def pop_timings(self) -> dict[str, float]:
        """Seconds spent in env resets and steps since the last call."""
        seconds, self.env_seconds = self.env_seconds, 0.0
        return {"env_step": seconds}

    @annotated
    def pop_metrics(self) -> dict[str, float]:
        """Env-side metrics, named as logged; a separate call so that ``pop_timings`` stays timings only.

        Keys:
            ``env/restarts``: sim process restarts (all stages) since the last call, i.e. per global
            step when called once per step; ``env/restarts_total``: since the worker started;
            ``memory/env_worker_rss_mb``: resident memory of this worker process (MiB);
            ``memory/env_sims_rss_mb``: summed resident memory of its sim sub-processes (MiB).
        """
        total = sum(env.restarts for env in self.envs)
        new, self._restarts_reported = total - self._restarts_reported, total
        return {
            "env/restarts": float(new),
            "env/restarts_total": float(total),
            "memory/env_worker_rss_mb": rss_mb(),
            "memory/env_sims_rss_mb": children_rss_mb([pid for pids in self.sim_pids() for pid in pids]),
        }

    @annotated
    def sim_pids(self) -> list[list[int]]:
        """Process ids of each stage's sim sub-processes (empty lists for in-process sims)."""
        return [env.sim_pids for env in self.envs]

    @annotated
    def finish_epoch(self, stage: int, video_name: str | None = None) -> None:
        """Flush the stage's video (if recorded) and draw the next epoch's init states."""
        self.envs[stage].finish_epoch(video_name=video_name)

    @annotated
    def sampler_states(self) -> list[dict]:
        """Reset-state sampler states of every stage (for resume)."""
        return [{"sampler": env.sampler.state_dict(), "ids": env.reset_state_ids.tolist()} for env in self.envs]

    @annotated
    def load_sampler_states(self, states: list[dict]) -> None:
        for env, state in zip(self.envs, states):
            env.sampler.load_state_dict(state["sampler"])
            env.reset_state_ids = np.asarray(state["ids"], dtype=np.int64)

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
