"""The training loop of one task and its evaluation (docs/architecture.md), driven from the Ray driver.

Per global step: weight sync actor → rollout, rollout generation (env and rollout workers exchange
env batches and action chunks through Ray object refs; with ``pipeline_stage_num`` > 1 one stage's
env steps overlap another stage's inference), actor update, metrics, checkpoint.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vlacrl.distributed.resharding import actor_shards, rollout_rank_of_env
from vlacrl.metrics.evaluation import average_epochs, epoch_metrics, merge_episode_records
from vlacrl.metrics.loggers import MetricLogger
from vlacrl.metrics.timers import PhaseTimer, accumulate, coordination_overhead
from vlacrl.runners import checkpoint
from vlacrl.runners.errors import NodeLostError, WorkerDiedError, ray_get
from vlacrl.runners.nodes import node_lost
from vlacrl.runners.workers import WorkerGroups, create_env_group, create_env_worker

logger = logging.getLogger(__name__)


class EmbodiedRunner:
    """Runs ``max_steps`` global steps of GRPO/PPO on the configured task(s)."""

    def __init__(self, cfg: dict[str, Any], groups: WorkerGroups, metric_logger: MetricLogger):
        self.cfg, self.groups, self.metric_logger = cfg, groups, metric_logger
        self.log_path = Path(cfg["runner"]["logger"]["log_path"])
        self.timer = PhaseTimer()
        self.time_totals: dict[str, float] = {}  # seconds per phase over this invocation's steps (phase_table)
        self.steps_timed = 0
        self.global_step = 0
        self.stages = int(cfg["rollout"].get("pipeline_stage_num", 1))
        runner = cfg["runner"]
        self.max_steps = int(runner["max_epochs"])
        if int(runner.get("max_steps", -1)) >= 0:
            self.max_steps = min(self.max_steps, int(runner["max_steps"]))
        # env worker replacement: sampler states at the start of the next rollouts (None: fresh workers)
        self.env_states: list | None = None
        self.dead_envs: set[int] = set()
        self.max_env_worker_restarts = int(runner.get("max_env_worker_restarts", 2))
        self.env_worker_restarts = {"step": 0, "total": 0}

    def _get(self, refs):
        """``ray.get``; a worker that died becomes one ``WorkerDiedError`` naming its role, rank and log, a lost node
        one ``NodeLostError`` naming the node, its roles and the checkpoint to resume from."""
        try:
            return ray_get(refs, self.groups)
        except NodeLostError as exc:
            where = f"at global step {self.global_step}"
            raise node_lost(exc, self.groups.placement, where, checkpoint.latest_checkpoint(self.log_path)) from None

    # -- set-up -------------------------------------------------------------------------------------
    def init_workers(self, resume_dir: Path | None) -> None:
        """Form the actor process group (rank 0's address), build models, restore a checkpoint."""
        addr, port = self._get(self.groups.actors[0].master_address.remote())
        resume = str(resume_dir) if resume_dir else None
        state = checkpoint.read_trainer_state(resume_dir) if resume_dir is not None else {"global_step": 0}
        step = int(state["global_step"])
        self._get([a.setup.remote(addr, port, resume, step) for a in self.groups.actors])
        if resume_dir is not None:
            self.global_step = step
            self.env_states = state["env_samplers"]
            self._get([e.load_sampler_states.remote(s) for e, s in zip(self.groups.envs, state["env_samplers"])])
            self._set_rollout_rng(state.get("rollout_rng", {}))
            logger.info("resumed from %s at global step %d", resume_dir, self.global_step)

    def sync_weights(self) -> None:
        """Actor's trainable weights (gathered on rank 0) → every rollout worker."""
        with self.timer.phase("weight_sync"):
            states = self._get([a.trainable_state.remote() for a in self.groups.actors])
            self._get([r.load_weights.remote(states[0]) for r in self.groups.rollouts])

    # -- rollouts -------------------------------------------------------------------------------------
    def _rollout_of(self, env_rank: int):
        """The rollout worker serving env worker ``env_rank`` (``resharding.rollout_rank_of_env``)."""
        env_world = len(self.groups.slots["env"])  # training and evaluation env workers share the env ranks
        return self.groups.rollouts[rollout_rank_of_env(env_rank, env_world, len(self.groups.rollouts))]

    def _run_epoch(self, envs: list, n_chunks: int, mode: str, video_name: str) -> list:
        """One rollout epoch on every (env rank, stage); returns the refs of the last env batches.

        Env rank ``r``'s stage ``s`` is env shard ``r·S + s`` (S: training stages; evaluation has one stage)."""
        refs = {(r, s): env.start_epoch.remote(s) for r, env in enumerate(envs) for s in range(self._stages(mode))}
        for _ in range(n_chunks):
            for (r, s), ref in list(refs.items()):
                actions = self._rollout_of(r).act.remote(r * self.stages + s, ref, mode)
                refs[(r, s)] = envs[r].step.remote(s, actions)
        if mode == "train":
            self._get(
                [self._rollout_of(r).observe_final.remote(r * self.stages + s, ref) for (r, s), ref in refs.items()]
            )
        self._get([envs[r].finish_epoch.remote(s, video_name) for (r, s) in refs])
        return list(refs.values())

    def _stages(self, mode: str) -> int:
        return self.stages if mode == "train" else 1

    def generate_rollouts(self) -> list:
        """All rollout epochs of one global step; returns one batch ref per rollout rank.

        An env worker that died (before or during these rollouts) is replaced, every env sampler and rollout
        generator is put back to the step's start and the rollouts run again — the same batch as without the
        crash — at most ``runner.max_env_worker_restarts`` times per global step (then the error ends the run).
        """
        rng = self._rollout_rng()
        for attempt in range(self.max_env_worker_restarts + 1):
            try:
                self._replace_dead_envs(rng)
                refs = self._rollout_epochs()
                self.env_states = self._get([e.sampler_states.remote() for e in self.groups.envs])
                return refs
            except WorkerDiedError as exc:
                if exc.role != "env" or attempt == self.max_env_worker_restarts:
                    raise
                logger.warning("%s; replacing it and re-running this step's rollouts", exc)
                self.dead_envs.add(int(exc.rank))
        raise AssertionError("unreachable")

    def _rollout_epochs(self) -> list:
        algo = self.cfg["algorithm"]
        with self.timer.phase("rollout"):
            with tqdm(range(int(algo["rollout_epoch"])), desc="rollout epochs", leave=False) as epochs:
                for epoch in epochs:  # closed on an error too, so that the error line starts on a line of its own
                    name = f"step_{self.global_step}_epoch_{epoch}"
                    self._run_epoch(self.groups.envs, int(algo["n_chunk_steps"]), "train", name)
            return [r.collect.remote() for r in self.groups.rollouts]

    def _rollout_rng(self) -> dict[str, list[int]]:
        """Every env shard's sampling-generator state, merged over the rollout workers."""
        merged: dict[str, list[int]] = {}
        for states in self._get([r.rng_state.remote() for r in self.groups.rollouts]):
            merged.update(states)
        return merged

    def _set_rollout_rng(self, states: dict[str, list[int]] | list) -> None:
        """Restore :meth:`_rollout_rng` on every rollout worker (a pre-shard checkpoint's list: one per rank)."""
        if isinstance(states, list):
            self._get([r.set_rng_state.remote(s) for r, s in zip(self.groups.rollouts, states)])
        else:
            self._get([r.set_rng_state.remote(states) for r in self.groups.rollouts])

    def _replace_dead_envs(self, rollout_rng: dict[str, list[int]]) -> None:
        """New workers for the env ranks in ``dead_envs``; all env samplers and rollout generators back to the
        step's start, the rollouts' partial buffers dropped. Nothing to do while every env worker lives."""
        if not self.dead_envs:
            return
        import ray

        for rank in sorted(self.dead_envs):
            try:
                ray.kill(self.groups.envs[rank], no_restart=True)
            except Exception:  # noqa: BLE001 - it is dead already
                pass
            slot = self.groups.slots["env"][rank]
            self.groups.envs[rank] = create_env_worker(self.cfg, slot, len(self.groups.envs), "train")
            self.env_worker_restarts["step"] += 1
            self.env_worker_restarts["total"] += 1
        self.dead_envs.clear()
        if self.env_states is not None:
            self._get([e.load_sampler_states.remote(s) for e, s in zip(self.groups.envs, self.env_states)])
        self._set_rollout_rng(rollout_rng)
        self._get([r.discard.remote() for r in self.groups.rollouts])

    def _env_results(self, method: str) -> list[dict]:
        """``method()`` of every train env worker; one that died gives ``{}`` and is replaced at the next
        rollouts (its death is not fatal between rollouts either)."""
        results = []
        for rank, env in enumerate(self.groups.envs):
            try:
                results.append(self._get(getattr(env, method).remote()))
            except WorkerDiedError as exc:
                if exc.role != "env":
                    raise
                logger.warning("%s; it is replaced before the next rollouts", exc)
                self.dead_envs.add(rank)
                results.append({})
        return results

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        """Global steps from the current one to ``max_steps``; returns the last step's metrics."""
        metrics: dict[str, float] = {}
        val_every = int(self.cfg["runner"].get("val_check_interval", -1))
        with tqdm(total=self.max_steps, initial=self.global_step, desc="global steps") as bar:
            while self.global_step < self.max_steps:
                step_start, window_start = time.perf_counter(), time.time()
                self.sync_weights()
                if val_every > 0 and self.global_step % val_every == 0:
                    self.metric_logger.log(self.evaluate(), step=self.global_step)
                metrics = self.train_one_step()
                metrics["time/step"] = time.perf_counter() - step_start
                metrics.update(coordination_overhead(self._busy_intervals(), window_start, time.time()))
                self.metric_logger.log(metrics, step=self.global_step)
                self.global_step += 1
                saved_at = time.perf_counter()
                self.maybe_save()
                metrics["time/checkpoint"] = time.perf_counter() - saved_at
                metrics["time/step"] += metrics["time/checkpoint"]
                accumulate(self.time_totals, metrics)
                self.steps_timed += 1
                bar.update(1)
        return metrics

    def _busy_intervals(self) -> list[tuple[float, float]]:
        """Every worker's work intervals since the last call (env workers that died contribute none)."""
        others = [*self.groups.actors, *self.groups.rollouts, *self.groups.eval_envs]
        per_worker = self._get([w.pop_busy.remote() for w in others]) + self._env_results("pop_busy")
        return [interval for worker in per_worker for interval in worker]

    def finish_task(self) -> dict[str, Any]:
        """The CRL method's end-of-task work on the actor ranks (e.g. EWC's Fisher); rank 0's record."""
        return self._get([a.finish_task.remote(str(self.log_path)) for a in self.groups.actors])[0]

    def worker_counts(self) -> dict[str, int]:
        """Workers per group (for the phase table's busy shares)."""
        return {"env": len(self.groups.envs), "rollout": len(self.groups.rollouts), "actor": len(self.groups.actors)}

    def train_one_step(self) -> dict[str, float]:
        batches = self.generate_rollouts()
        is_last = self.global_step == self.max_steps - 1
        with self.timer.phase("actor_training"):
            per_rank = self._get([
                actor.train_step.remote(
                    *[batches[r] for r in shard.sources], env_range=(shard.start, shard.stop), is_last_step=is_last
                )
                for actor, shard in zip(self.groups.actors, self._actor_shards())
            ])  # fmt: skip
        metrics = dict(per_rank[0])
        metrics.pop("time/actor_training", None)
        metrics.update(self._env_info_metrics())
        metrics.update(self.timer.pop())
        env_steps = self._env_steps_per_global_step()
        metrics["rollout/env_steps_per_s"] = env_steps / max(metrics.get("time/rollout", 0.0), 1e-9)
        timings = self._get([w.pop_timings.remote() for w in self.groups.rollouts])
        timings += self._env_results("pop_timings")
        for timing in timings:
            for key, value in timing.items():  # summed over workers (per-worker busy time)
                metrics[f"time/{key}"] = metrics.get(f"time/{key}", 0.0) + value
        metrics.update(self._worker_health())
        return metrics

    def _actor_shards(self) -> list:
        """Which rollout batches, and which of their envs, each actor rank trains on (``resharding``)."""
        algo = self.cfg["algorithm"]
        num_envs = int(algo["num_group_envs"]) * int(algo["group_size"])
        return actor_shards(num_envs, len(self.groups.rollouts), len(self.groups.actors), int(algo["group_size"]))

    def _worker_health(self) -> dict[str, float]:
        """``env/restarts*`` and the env workers' ``memory/*`` summed over env workers; the actor's and
        rollout's resident memory as the largest of their ranks (``memory/{actor,rollout}_rss_mb``, MiB)."""
        out: dict[str, float] = {}
        for env_metrics in self._env_results("pop_metrics"):
            for key, value in env_metrics.items():
                out[key] = out.get(key, 0.0) + value
        out["env/worker_restarts"] = float(self.env_worker_restarts["step"])
        out["env/worker_restarts_total"] = float(self.env_worker_restarts["total"])
        self.env_worker_restarts["step"] = 0
        for role, group in (("actor", self.groups.actors), ("rollout", self.groups.rollouts)):
            out[f"memory/{role}_rss_mb"] = max(self._get([w.rss_mb.remote() for w in group]))
        return out

    def _env_info_metrics(self) -> dict[str, float]:
        """``rollout/env_info/<k>``: per-key mean over the rollout ranks that saw key k."""
        per_rank = self._get([r.pop_env_info.remote() for r in self.groups.rollouts])
        keys = set().union(*per_rank)
        return {f"rollout/{k}": float(np.mean([m[k] for m in per_rank if k in m])) for k in sorted(keys)}

    def _env_steps_per_global_step(self) -> int:
        algo, env = self.cfg["algorithm"], self.cfg["env"]["train"]
        return int(algo["rollout_epoch"]) * int(env["max_episode_steps"]) * int(env["num_envs"])

    # -- checkpoints -------------------------------------------------------------------------------------
    def maybe_save(self) -> Path | None:
        interval = int(self.cfg["runner"].get("save_interval", -1))
        if interval <= 0 or (self.global_step % interval and self.global_step != self.max_steps):
            return None
        return self.save()

    def save(self) -> Path:
        """Checkpoint ``global_step_<N>`` atomically: the actor ranks write ``actor/`` into the temp dir, the
        driver adds the env samplers' and rollout generators' states (``checkpoint.save_atomic``)."""

        def write(tmp: Path) -> None:
            self._get([a.save_checkpoint.remote(str(tmp)) for a in self.groups.actors])

        def trainer_state() -> dict[str, Any]:
            samplers = self.env_states  # taken right after the step's rollouts (no env call: one may have died)
            if samplers is None:
                samplers = self._get([e.sampler_states.remote() for e in self.groups.envs])
            return {"global_step": self.global_step, "env_samplers": samplers, "rollout_rng": self._rollout_rng()}

        return checkpoint.save_atomic(self.log_path, self.global_step, write, trainer_state)

    # -- evaluation ------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """``algorithm.eval_rollout_epoch`` epochs over the eval envs; ``eval/env_info/...`` metrics."""
        if not self.groups.eval_envs:
            self.groups.eval_envs = create_env_group(self.cfg, self.groups.slots["eval_env"], "eval")
        tasks = eval_task_ids(self.cfg)
        per_epoch = []
        start = time.perf_counter()
        n_chunks = int(self.cfg["algorithm"]["n_eval_chunk_steps"])
        with tqdm(range(int(self.cfg["algorithm"]["eval_rollout_epoch"])), desc="eval epochs", leave=False) as epochs:
            for epoch in epochs:
                name = f"eval_{self.global_step}_{epoch}"
                last = self._get(self._run_epoch(self.groups.eval_envs, n_chunks, "eval", name))
                per_epoch.append(epoch_metrics(merge_episode_records([b.episode for b in last]), tasks))
        metrics = {f"eval/{k}": v for k, v in average_epochs(per_epoch).items()}
        metrics["time/eval"] = time.perf_counter() - start
        return metrics


def eval_task_ids(cfg: dict[str, Any]) -> list[int]:
    """Tasks evaluated: ``env.eval.fixed_task_ids`` or every task of the suite."""
    from vlacrl.envs.registry import task_ids_of

    return task_ids_of(cfg["env"]["eval"])
