"""RolloutWorker: a policy copy that samples action chunks and records the trajectory batch.

Per rollout epoch and env shard (one pipeline stage of one env worker; a rollout worker may serve several env
workers, ``vlacrl.distributed.resharding``) the driver calls ``act`` once per chunk step with the env batch, then
``observe_final`` with the epoch's last env batch. Each shard samples with its own generator (seeded from
``actor.seed`` and the shard's number), so the actions an env gets do not depend on which worker serves it.
``collect`` returns everything of the global step in the reference's rollout layout (docs/architecture.md),
the shards concatenated along the env axis in shard order:

    input_ids [E·N, b, L] int64, attention_mask [E·N, b, L] bool, pixel_values [E·N, b, 1, 6, 224, 224],
    action_tokens [E·N, b, C, D] int64, prev_logprobs [E·N, b, C·D], prev_values [E·(N+1), b, V],
    rewards [E·N, b, C] float32, dones [E·(N+1), b, C] bool, env_info/<k> [E·b]
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any, Mapping

import numpy as np
import torch

from vlacrl.algorithms.layout import concat_env_ranges
from vlacrl.crl.registry import build_method
from vlacrl.workers.errors import annotated
from vlacrl.workers.fixed_actions import FixedActionCycle
from vlacrl.workers.info import WorkerInfo, group_work
from vlacrl.workers.policy_setup import build_policy, build_processor, rollout_model_path, worker_device

logger = logging.getLogger(__name__)


class StageBuffer:
    """Per-step tensors of one env shard (a pipeline stage of one env worker) over the epochs of a global step."""

    def __init__(self):
        self.steps: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.env_info: dict[str, list[np.ndarray]] = defaultdict(list)

    def add(self, **tensors: torch.Tensor) -> None:
        for key, value in tensors.items():
            self.steps[key].append(value)

    def stacked(self) -> dict[str, torch.Tensor]:
        out = {key: torch.stack(values) for key, values in self.steps.items()}
        out.update({f"env_info/{k}": torch.as_tensor(np.concatenate(v)) for k, v in self.env_info.items()})
        return out


class RolloutWorker(WorkerInfo):
    """Samples actions with the current policy weights; one per rollout rank."""

    role = "rollout"

    def __init__(self, cfg: Mapping[str, Any], rank: int, world_size: int, use_gpu: bool = False):
        self.rank, self.world_size = rank, world_size
        self.device = worker_device(use_gpu)
        model_dir = rollout_model_path(cfg)
        self.model = build_policy(cfg, model_dir, use_gpu).eval()
        self.method = build_method(cfg)
        self.method.setup_rollout(self.model)  # modules a CRL method adds to the policy (CRL-VLA's critics)
        self.processor = build_processor(cfg, model_dir, self.model)
        self.dtype = next(p.dtype for p in self.model.parameters())
        sampling = cfg["algorithm"]["sampling_params"]
        self.temperature = {"train": float(sampling["temperature_train"]), "eval": float(sampling["temperature_eval"])}
        self.top_k = int(sampling.get("top_k", -1))
        greedy = bool(sampling.get("use_greedy", False))  # use_greedy_eval: evaluation only (default: the same)
        self.greedy = {"train": greedy, "eval": bool(sampling.get("use_greedy_eval", greedy))}
        self.require_values = bool(cfg["algorithm"].get("require_values", False))
        self.seed = int(cfg["actor"].get("seed", 0))
        self.generators: dict[int, torch.Generator] = {}  # per env shard, made on first use
        self.buffers: dict[int, StageBuffer] = defaultdict(StageBuffer)
        self.infer_seconds = 0.0
        self.env_info_means: dict[str, float] = {}
        model_cfg = cfg["actor"]["model"]
        self.fixed_actions = (  # the reference's model-free evaluation baseline (docs/evaluation.md)
            FixedActionCycle(int(model_cfg["num_action_chunks"]), int(model_cfg.get("action_dim", 7)))
            if cfg.get("rollout", {}).get("random_action", False) else None
        )  # fmt: skip

    def _inputs(self, env_batch) -> dict[str, torch.Tensor]:
        inputs = self.processor(list(env_batch.obs["task_descriptions"]), env_batch.obs["full_image"])
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    @torch.no_grad()
    def _generator(self, shard: int) -> torch.Generator:
        """Env shard ``shard``'s sampling generator, seeded ``actor.seed · 1000 + shard`` on first use."""
        if shard not in self.generators:
            self.generators[shard] = torch.Generator(device=self.device).manual_seed(self.seed * 1000 + shard)
        return self.generators[shard]

    def _predict(self, inputs: dict[str, torch.Tensor], mode: str, shard: int):
        start = time.perf_counter()
        prediction = self.model.predict_action_batch(
            inputs["input_ids"],
            inputs["attention_mask"],
            inputs["pixel_values"],
            temperature=self.temperature[mode],
            top_k=self.top_k if self.top_k > 0 else None,
            greedy=self.greedy[mode],
            generator=self._generator(shard),
        )
        self.infer_seconds += time.perf_counter() - start
        return prediction

    def _values(self, inputs: dict[str, torch.Tensor], prediction) -> torch.Tensor:
        """[B, 1] on CPU: the CRL method's values (CRL-VLA's V_MC), else the value head's, else zeros."""
        values = self.method.rollout_values(inputs, prediction.action_tokens) if self.require_values else None
        if values is None:
            values = prediction.values
        elif prediction.values is not None:  # one value per chunk, repeated over a step-level head's width
            values = values.expand(-1, prediction.values.shape[-1])
        return values.float().cpu() if values is not None else torch.zeros(len(prediction.actions), 1)

    def _record_env(self, buffer: StageBuffer, env_batch) -> None:
        """Rewards and dones of the env batch, copied (the arrays Ray hands over are read-only)."""
        if env_batch.rewards is not None:
            buffer.add(rewards=torch.tensor(env_batch.rewards, dtype=torch.float32))
        buffer.add(dones=torch.tensor(env_batch.dones, dtype=torch.bool))

    @annotated
    @group_work
    def act(self, shard: int, env_batch, mode: str = "train") -> np.ndarray:
        """Actions [b, C, D] (env scale) for ``env_batch`` of env shard ``shard``; in ``train`` mode the step is
        recorded."""
        if self.fixed_actions is not None and mode == "eval":
            return self.fixed_actions.next(len(env_batch.obs["task_descriptions"]))
        inputs = self._inputs(env_batch)
        prediction = self._predict(inputs, mode, shard)
        if mode == "train":
            buffer = self.buffers[shard]
            self._record_env(buffer, env_batch)
            values = self._values(inputs, prediction)
            buffer.add(
                input_ids=inputs["input_ids"].cpu(),
                attention_mask=inputs["attention_mask"].bool().cpu(),
                pixel_values=inputs["pixel_values"].cpu(),
                action_tokens=prediction.action_tokens.cpu(),
                prev_logprobs=prediction.logprobs.float().cpu(),
                prev_values=values.float().cpu(),
            )
        return prediction.actions.float().cpu().numpy()

    @annotated
    @group_work
    def observe_final(self, shard: int, env_batch) -> None:
        """Record the epoch's last rewards/dones, a bootstrap value, and the episode metrics of env shard ``shard``."""
        buffer = self.buffers[shard]
        self._record_env(buffer, env_batch)
        values = torch.zeros(len(env_batch.dones), 1)
        if self.require_values:
            inputs = self._inputs(env_batch)
            values = self._values(inputs, self._predict(inputs, "train", shard))
        buffer.add(prev_values=values)
        for key, value in (env_batch.episode or {}).items():
            buffer.env_info[key].append(np.asarray(value))

    @annotated
    def collect(self) -> dict[str, torch.Tensor]:
        """The global step's batch (shards concatenated along the env axis in shard order); clears the buffers."""
        out = concat_env_ranges([self.buffers[s].stacked() for s in sorted(self.buffers)])
        self.buffers.clear()
        self.env_info_means = {k: float(v.float().mean()) for k, v in out.items() if k.startswith("env_info/")}
        return out

    @annotated
    def discard(self) -> None:
        """Drop the steps recorded since the last ``collect`` (the driver re-runs the global step's rollouts)."""
        self.buffers.clear()

    @annotated
    def pop_env_info(self) -> dict[str, float]:
        """Means of the last collected batch's ``env_info/*`` (final step of every training episode)."""
        means, self.env_info_means = self.env_info_means, {}
        return means

    @annotated
    def load_weights(self, state: dict[str, torch.Tensor]) -> int:
        """Load the actor's (trainable) weights; returns the number of tensors loaded."""
        own = dict(self.model.named_parameters())
        unknown = [k for k in state if k not in own]
        if unknown:
            raise KeyError(f"weights not in the rollout model: {unknown[:5]} (of {len(unknown)})")
        with torch.no_grad():
            for key, value in state.items():
                own[key].copy_(value.to(own[key].device, own[key].dtype))
        return len(state)

    @annotated
    def rng_state(self) -> dict[str, list[int]]:
        """The sampling generators' states by env shard (``{"<shard>": bytes}``, for bit-exact resume)."""
        return {str(shard): gen.get_state().tolist() for shard, gen in sorted(self.generators.items())}

    @annotated
    def set_rng_state(self, states: dict[str, list[int]] | list[int]) -> None:
        """Restore :meth:`rng_state` (of this worker or merged over all rollout workers); shards it does not
        name start from their seed. A bare list (checkpoints from before per-shard generators) is shard ``rank``."""
        if isinstance(states, list):
            states = {str(self.rank): states}
        self.generators = {}
        for shard, state in states.items():
            self._generator(int(shard)).set_state(torch.tensor(state, dtype=torch.uint8))

    @annotated
    def pop_timings(self) -> dict[str, float]:
        seconds, self.infer_seconds = self.infer_seconds, 0.0
        return {"rollout_inference": seconds}
