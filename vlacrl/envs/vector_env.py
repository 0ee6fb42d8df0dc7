"""Vectorised env of any simulator with the reference's episode semantics (docs/algorithms.md, docs/libero.md).

One :class:`VectorEnv` per env worker (or pipeline stage) holds ``num_envs`` simulations of one
:class:`~vlacrl.envs.simulator.Simulator` (LIBERO: in sub-processes; the probe world: in this process),
the reset-state sampler, per-env episode bookkeeping and an optional video recorder.

Per rollout epoch the caller does::

    obs = env.start_epoch()                      # reset every env to this epoch's init states
    for _ in range(n_chunk_steps):
        obs, rewards, terms, truncs, infos = env.chunk_step(model_actions)   # [B, C, 7]
    env.finish_epoch()                           # flush video, draw the next init states

A sim sub-process that dies or raises during a call is restarted (at most ``max_restarts`` times
per process per epoch) and its envs are brought back to exactly where they were: each is reset to
its episode's init state and the action chunks of the episode so far are replayed (the simulation
is deterministic), then the failed call is re-issued. The caller sees no difference beyond the
time it took; ``restarts`` counts them. See docs/reliability.md.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlacrl.envs.episode import EpisodeTracker
from vlacrl.envs.errors import EnvConfigError, EnvWorkerError
from vlacrl.envs.reset_states import ResetStateSampler, ResetStateSpace
from vlacrl.envs.sim_pool import SimFailure
from vlacrl.envs.simulator import Simulator
from vlacrl.envs.video import VideoConfig, VideoRecorder

ACTION_DIM = 7  # 6 motion dims + gripper, every simulator

logger = logging.getLogger(__name__)


@dataclass
class VectorEnvConfig:
    """One env worker's envs. Defaults are the reference's training env (``env.train``)."""

    num_envs: int = 8  # B: envs on this worker
    group_size: int = 8  # G: envs sharing an init state (1 for evaluation)
    task_ids: list[int] | None = None  # env.fixed_task_ids; None = every task of the suite
    mode: str = "train"  # train (ordered GRPO groups) | eval (per-task draws) | random
    use_fixed_reset_state_ids: bool = True
    auto_reset: bool = False
    ignore_terminations: bool = False
    reward_coef: float = 5.0
    use_rel_reward: bool = True
    seed: int = 0
    num_processes: int | None = None  # None: one per env, capped by available memory
    in_process: bool = False  # run the sims in this process (debugging; in-process simulators always do)
    max_restarts: int = 2  # env.<split>.max_env_restarts: restarts of a crashed sim process per epoch
    sim: Any = None  # the simulator's own config (None: its defaults); has .suite and .max_episode_steps
    video: VideoConfig = field(default_factory=VideoConfig)

    @property
    def num_group(self) -> int:
        return self.num_envs // self.group_size

    def validate(self, simulator: Simulator) -> None:
        simulator.validate_suite(self.sim.suite)
        if self.task_ids is not None:
            if not self.task_ids:
                raise EnvConfigError("task_ids is empty; give at least one task id or null for all tasks")
            simulator.validate_task_ids(self.sim.suite, self.task_ids)
        if self.num_envs < 1 or self.group_size < 1 or self.num_envs % self.group_size:
            raise EnvConfigError(
                f"num_envs ({self.num_envs}) must be a positive multiple of group_size ({self.group_size})"
            )
        if self.mode not in ("train", "eval", "random"):
            raise EnvConfigError(f"mode must be train, eval or random, not {self.mode!r}")
        if self.max_restarts < 0:
            raise EnvConfigError(f"max_env_restarts must be >= 0, not {self.max_restarts}")


class VectorEnv:
    """``num_envs`` envs of one simulator stepped in action chunks."""

    def __init__(
        self,
        config: VectorEnvConfig,
        simulator: Simulator,
        *,
        rank: int = 0,
        world_size: int = 1,
        cuda_device: int | None = None,
        env_vars: dict | None = None,
    ):
        """
        Args:
            config: the envs (validated here, before any simulation starts).
            simulator: the env family (:func:`vlacrl.envs.registry.get_simulator`).
            rank, world_size: this env worker among all env workers (reset-state split).
            cuda_device: the process-local CUDA device of this worker, if any (LIBERO renders with EGL on
                it; None renders with OSMesa; an explicit MUJOCO_GL wins).
            env_vars: extra environment variables for simulator sub-processes.
        """
        if config.sim is None:
            config = dataclasses.replace(config, sim=simulator.default_sim_config())
        config.validate(simulator)
        self.config, self.simulator, self.rank, self.world_size = config, simulator, rank, world_size
        self.num_envs = config.num_envs
        suite = config.sim.suite
        task_ids = list(config.task_ids) if config.task_ids is not None else list(range(simulator.num_tasks(suite)))
        self.space = ResetStateSpace(tuple(task_ids), tuple(simulator.num_init_states(config.sim, t) for t in task_ids))
        self.sampler = ResetStateSampler(
            self.space, config.num_group, config.group_size, mode=config.mode,
            seed=config.seed, rank=rank, world_size=world_size,
        )  # fmt: skip
        self.reset_state_ids = self.sampler.next_ids()
        self.task_ids, self.trial_ids = self.space.to_task_trial(self.reset_state_ids)
        self.descriptions = {t: simulator.task_language(suite, t) for t in task_ids}
        self.tracker = EpisodeTracker(
            self.num_envs, max_episode_steps=config.sim.max_episode_steps,
            reward_coef=config.reward_coef, use_rel_reward=config.use_rel_reward,
        )  # fmt: skip
        self.video = VideoRecorder(config.video, self.num_envs)
        self._last_obs: list[dict | None] = [None] * self.num_envs
        # Env actions [C, 7] of each chunk of each env's current episode (None: never reset), to
        # replay an episode in a restarted sim process.
        self._history: list[list[np.ndarray] | None] = [None] * self.num_envs
        self.restarts = 0  # sim process restarts since construction
        self._epoch_restarts: dict[int, int] = {}  # restarts per sim process in this epoch
        self.pool = simulator.open_pool(
            config.sim, self.task_ids, num_processes=config.num_processes, in_process=config.in_process,
            cuda_device=cuda_device, env_vars=env_vars or {},
        )  # fmt: skip

    @property
    def restartable(self) -> bool:
        """Whether failed simulations can be restarted (they run in sub-processes)."""
        return hasattr(self.pool, "call_collect")

    @property
    def sim_pids(self) -> list[int]:
        """Process ids of the sim sub-processes (empty when the sims run in this process)."""
        return list(self.pool.pids) if self.restartable else []

    # -- observations -----------------------------------------------------------------------------
    @property
    def task_descriptions(self) -> list[str]:
        return [self.descriptions[int(t)] for t in self.task_ids]

    def _batch_obs(self) -> dict:
        """``{"full_image": [B, H, W, 3] uint8, "state": [B, 8] float32, "task_descriptions": [B]}``."""
        batch = {key: np.stack([o[key] for o in self._last_obs]) for key in self._last_obs[0]}
        batch["task_descriptions"] = self.task_descriptions
        return batch

    # -- resets -----------------------------------------------------------------------------------
    def reset(self, env_idx: np.ndarray | None = None, reset_state_ids: np.ndarray | None = None) -> dict:
        """Reset ``env_idx`` (default all) to ``reset_state_ids`` (default: fixed ids, or random)."""
        env_idx = np.arange(self.num_envs) if env_idx is None else np.asarray(env_idx)
        if reset_state_ids is None:
            if self.config.use_fixed_reset_state_ids:
                reset_state_ids = self.reset_state_ids[env_idx]
            else:
                reset_state_ids = self.sampler.random_ids(len(env_idx))
        tasks, trials = self.space.to_task_trial(reset_state_ids)
        self.task_ids[env_idx], self.trial_ids[env_idx] = tasks, trials
        calls = {int(i): (int(tr), int(tk)) for i, tk, tr in zip(env_idx, tasks, trials)}
        results = self._call("reset", calls, overwrites_state=True)
        for i, obs in results.items():
            self._last_obs[i] = obs
            self._history[i] = []
        self.tracker.reset(env_idx)
        return self._batch_obs()

    def start_epoch(self) -> dict:
        """Reset every env to this epoch's init states; returns the first observation batch.

        Also gives every sim process a fresh budget of ``max_restarts`` restarts.
        """
        self._epoch_restarts.clear()
        return self.reset()

    def finish_epoch(self, video_name: str | None = None, video_sub_dir: str | None = None) -> None:
        """Write this epoch's video (if recorded) and draw the next epoch's init states."""
        name = video_name or f"epoch_{self.video.epochs_seen}"
        self.video.flush(name, video_sub_dir or f"rank_{self.rank}")
        self.reset_state_ids = self.sampler.next_ids()

    # -- stepping ---------------------------------------------------------------------------------
    def chunk_step(self, model_actions: np.ndarray):
        """Execute one action chunk in every env.

        Args:
            model_actions: [B, C, 7] un-normalised model actions (gripper in model convention).
        Returns:
            obs (batch dict at chunk end), rewards [B, C] float32, terminations [B, C] bool,
            truncations [B, C] bool, infos (``infos["episode"]``: per-env metrics after the chunk;
            with auto-reset also ``final_info``/``final_observation``/``_final_info``).
            Raw per-step flags are returned for training; with ``auto_reset`` or
            ``ignore_terminations`` they are collapsed onto the last sub-step, as the reference does.
        """
        actions = np.asarray(model_actions)
        if actions.ndim != 3 or actions.shape[0] != self.num_envs or actions.shape[2] != ACTION_DIM:
            raise EnvConfigError(f"actions must be [{self.num_envs}, C, {ACTION_DIM}], got {actions.shape}")
        env_actions = self.simulator.to_env_actions(actions)
        recording = self.video.active
        record_set = set(self.video.recorded_envs) if recording else set()
        results = self._call("step_chunk", {i: (env_actions[i], i in record_set) for i in range(self.num_envs)})
        raw_terms = np.stack([results[i].terminations for i in range(self.num_envs)])  # [B, C]
        for i in range(self.num_envs):
            self._last_obs[i] = results[i].obs
            if self._history[i] is not None:
                self._history[i].append(env_actions[i])
        rewards, terms, truncs, success = self._account(raw_terms)
        infos = {"episode": self.tracker.episode_info(self.task_ids)}
        if self.config.ignore_terminations:
            infos["episode"]["success_at_end"] = raw_terms[:, -1].copy()
            terms[:] = False
        if recording:
            self._add_video(results, record_set, rewards, success)
        obs = self._batch_obs()
        past_dones = (terms | truncs).any(axis=1)
        if self.config.auto_reset and past_dones.any():
            obs, infos = self._auto_reset(past_dones, obs, infos)
        if self.config.auto_reset or self.config.ignore_terminations:
            terms, truncs = _collapse(terms), _collapse(truncs)
        return obs, rewards, terms, truncs, infos

    def _account(self, raw_terms: np.ndarray):
        """Run the tracker over each sub-step: rewards, terminations, truncations, success [B, C]."""
        steps = raw_terms.shape[1]
        rewards = np.zeros(raw_terms.shape, dtype=np.float32)
        truncs = np.zeros(raw_terms.shape, dtype=bool)
        success = np.zeros(raw_terms.shape, dtype=bool)
        for t in range(steps):
            rewards[:, t], truncs[:, t] = self.tracker.step(raw_terms[:, t])
            success[:, t] = self.tracker.success_once
        return rewards, raw_terms.copy(), truncs, success

    def _auto_reset(self, dones: np.ndarray, obs: dict, infos: dict):
        final_obs, final_info = copy.deepcopy(obs), copy.deepcopy(infos)
        new_obs = self.reset(np.flatnonzero(dones))
        infos = {"final_observation": final_obs, "final_info": final_info, "_final_info": dones.copy(),
                 "_final_observation": dones.copy(), "episode": final_info["episode"]}  # fmt: skip
        return new_obs, infos

    def _add_video(self, results, record_set, rewards, success) -> None:
        frames = {i: results[i].frames for i in record_set}
        captions = {i: f"task {int(self.task_ids[i])} trial {int(self.trial_ids[i])}" for i in record_set}
        self.video.add_chunk(frames, captions, {i: success[i] for i in record_set})

    # -- crash recovery ---------------------------------------------------------------------------
    def _call(self, method: str, per_env_args: dict[int, tuple], *, overwrites_state: bool = False) -> dict:
        """``pool.call`` that restarts and restores failed sim processes, then re-issues their calls.

        Args:
            overwrites_state: the call sets the whole state of its envs (a reset), so a restarted
                process need not replay their episodes first.
        Raises:
            EnvWorkerError: a process failed more than ``max_restarts`` times this epoch (or the
                sims run in this process, where nothing can be restarted).
        """
        if not self.restartable:
            return self.pool.call(method, per_env_args)
        results: dict = {}
        pending = dict(per_env_args)
        while pending:
            done, failures = self.pool.call_collect(method, pending)
            results.update(done)
            for failure in failures:
                self._recover(failure, method, skip=set(pending) if overwrites_state else set())
            failed = {f.process for f in failures}
            pending = {i: args for i, args in pending.items() if self.pool.process_of(i) in failed}
        return results

    def _recover(self, failure: SimFailure, method: str, skip: set[int]) -> None:
        """Restart the failed process and restore its envs' episodes (except ``skip``), within budget."""
        while failure is not None:
            self._count_restart(failure, method)
            envs = self.pool.slices[failure.process]
            failure = self.pool.restart(failure.process, [int(self.task_ids[i]) for i in envs])
            if failure is None:
                failure = self._restore([i for i in envs if i not in skip])

    def _count_restart(self, failure: SimFailure, method: str) -> None:
        """Spend one restart of the failed process's budget; raise when none is left."""
        used = self._epoch_restarts.get(failure.process, 0)
        task = int(self.task_ids[failure.env_index])
        where = f"during {method} on task {task} of {self.config.sim.suite}"
        if used >= self.config.max_restarts:
            raise EnvWorkerError(
                failure.env_index,
                f"{failure.cause.rstrip()} [{where}; gave up after {used} restart(s) of its process this epoch, "
                f"max_env_restarts={self.config.max_restarts}]",
                self.simulator.label,
            )
        self._epoch_restarts[failure.process] = used + 1
        self.restarts += 1
        logger.warning(
            "%s env %d: %s [%s]; restarting its sim process (restart %d of %d this epoch)",
            self.simulator.label, failure.env_index, failure.cause.rstrip().splitlines()[-1], where,
            used + 1, self.config.max_restarts,
        )  # fmt: skip

    def _restore(self, envs: list[int]) -> SimFailure | None:
        """Reset ``envs`` (of one fresh process) to their episodes' init states and replay their chunks.

        Envs that were never reset keep the freshly built sim. Returns the process's failure, if any.
        """
        envs = [i for i in envs if self._history[i] is not None]
        if not envs:
            return None
        resets = {i: (int(self.trial_ids[i]), int(self.task_ids[i])) for i in envs}
        restored, failures = self.pool.call_collect("reset", resets)
        if failures:
            return failures[0]
        for k in range(max(len(self._history[i]) for i in envs)):
            calls = {i: (self._history[i][k], False) for i in envs if k < len(self._history[i])}
            outcomes, failures = self.pool.call_collect("step_chunk", calls)
            if failures:
                return failures[0]
            restored.update({i: outcome.obs for i, outcome in outcomes.items()})
        self._check_replay(restored)
        return None

    def _check_replay(self, restored: dict[int, dict]) -> None:
        """Warn when a replayed episode did not end where the original did (non-deterministic sim)."""
        for i, obs in restored.items():
            last = self._last_obs[i]
            if last is None or all(np.array_equal(obs[k], last[k]) for k in last):
                continue
            logger.warning(
                "%s env %d: the replayed episode (task %d, trial %d, %d chunks) differs from the original "
                "at its last observation; the episode continues from the replayed state",
                self.simulator.label, i, int(self.task_ids[i]), int(self.trial_ids[i]), len(self._history[i]),
            )  # fmt: skip

    # -- inspection / teardown --------------------------------------------------------------------
    def get_sim_states(self) -> np.ndarray:
        """[B, state_dim] flattened MjSim states (for tests and debugging)."""
        states = self._call("get_sim_state", {i: () for i in range(self.num_envs)})
        return np.stack([states[i] for i in range(self.num_envs)])

    def close(self) -> None:
        if getattr(self, "pool", None) is not None:
            self.pool.close()
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _collapse(flags: np.ndarray) -> np.ndarray:
    """Move "any over the chunk" onto the last sub-step; zeros elsewhere. [B, C] -> [B, C]."""
    out = np.zeros_like(flags)
    out[:, -1] = flags.any(axis=1)
    return out
