"""What a simulator (an env family: LIBERO, the probe world, ...) provides to the rest of vlacrl.

The env contract every family keeps (docs/architecture.md, "The env contract"):

* observations per env: ``full_image`` [H, W, 3] uint8 (the policy's camera, H = W = ``image_size``),
  ``state`` [8] float32, and one instruction sentence per task;
* actions: un-normalised model actions [C, 7] per chunk (6 motion dims, gripper in the model's convention:
  > 0.5 open), converted by :meth:`Simulator.to_env_actions`;
* one simulation per env exposing ``reset(trial_id, task_id) -> obs``, ``step_chunk(actions, record_frames)
  -> ChunkOutcome`` (obs at the chunk end, the goal predicate after each step, optional video frames),
  ``get_sim_state()`` and ``close()``;
* init states indexed by (task, trial), ``num_init_states(sim_config, task)`` of them per task, so that the shared
  reset-state samplers (:mod:`vlacrl.envs.reset_states`), rewards and episode metrics
  (:mod:`vlacrl.envs.episode`), videos and crash recovery (:mod:`vlacrl.envs.vector_env`) work unchanged.

A new simulator is one package ``vlacrl/envs/<name>/`` with a :class:`Simulator` subclass plus one entry in
:data:`vlacrl.envs.registry.SIMULATORS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vlacrl.envs.errors import EnvConfigError


@dataclass
class ChunkOutcome:
    """What one action chunk did to one env.

    Attributes:
        obs: chunk-end observation ``{"full_image": [H, W, 3] uint8, "state": [8] float32}`` (plus any extra
            camera images the simulator renders).
        terminations: [C] bool, the task's goal predicate after each env step.
        frames: [C, H, W, 3] uint8 frames of the policy's camera, only when requested (videos).
    """

    obs: dict
    terminations: np.ndarray
    frames: np.ndarray | None = None


class Simulator(ABC):
    """One env family. Instances are stateless descriptions (one per family, from the registry)."""

    #: registry name (``env.<split>.simulator_type``)
    name: str = ""
    #: how messages name one of its envs ("LIBERO env 3 failed: ...")
    label: str = ""
    #: suite name → number of tasks, known without loading anything
    suite_task_counts: Mapping[str, int] = {}

    # -- suites and tasks ---------------------------------------------------------------------------------
    def validate_suite(self, suite: str) -> str:
        if suite not in self.suite_task_counts:
            raise EnvConfigError(
                f"unknown {self.label} suite {suite!r}; choose one of {sorted(self.suite_task_counts)}"
            )
        return suite

    def validate_task_ids(self, suite: str, task_ids: Iterable[int]) -> list[int]:
        """Check every id against the suite's task count; returns them as a list of ints."""
        count = self.suite_task_counts[self.validate_suite(suite)]
        ids = [int(t) for t in task_ids]
        bad = [t for t in ids if not 0 <= t < count]
        if bad:
            raise EnvConfigError(f"task id(s) {bad} out of range for {suite}: it has tasks 0..{count - 1}")
        return ids

    def num_tasks(self, suite: str) -> int:
        return self.suite_task_counts[self.validate_suite(suite)]

    @abstractmethod
    def task_language(self, suite: str, task_id: int) -> str:
        """The instruction sentence the policy is prompted with for ``task_id``."""

    @abstractmethod
    def num_init_states(self, sim_config: Any, task_id: int) -> int:
        """How many init states (trials) the task has under ``sim_config`` (:meth:`sim_config`)."""

    # -- building envs -----------------------------------------------------------------------------------------
    @abstractmethod
    def default_sim_config(self) -> Any:
        """The simulator's own config with its defaults (picklable; has ``suite`` and ``max_episode_steps``)."""

    @abstractmethod
    def sim_config(self, env_cfg: Mapping[str, Any]) -> Any:
        """The simulator's own config from a resolved Hydra ``env.<split>`` section."""

    @abstractmethod
    def open_pool(
        self,
        sim_config: Any,
        task_ids: Sequence[int],
        *,
        num_processes: int | None,
        in_process: bool,
        cuda_device: int | None,
        env_vars: Mapping[str, str],
    ):
        """Start one simulation per entry of ``task_ids``; returns a pool (:mod:`vlacrl.envs.sim_pool`)."""

    @abstractmethod
    def to_env_actions(self, model_actions: np.ndarray) -> np.ndarray:
        """[..., 7] un-normalised model actions → the simulator's action convention."""

    # -- driver-side checks ----------------------------------------------------------------------------------
    def dataset_root(self) -> Path:
        """Where this family's demo and replay data live by default (``<root>/<suite>``,
        ``<root>/datasets_with_logits/<suite>_simplevla``). Default: ``<repo>/datasets``."""
        from vlacrl.paths import repo_root

        return repo_root() / "datasets"

    def rlds_release(self, suite: str) -> Path | None:
        """The folder of this family's released RLDS demos of ``suite``, the default source of the replay data
        when a family has one (``vlacrl-precompute-logits``); None: demo HDF5 files in ``<root>/<suite>``."""
        return None

    def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Driver-side set-up before any worker starts (e.g. config files, asset links). Default: nothing."""

    def check_runtime(self, *, uses_gpu: bool, joining_cluster: bool) -> None:  # noqa: B027 (optional hook)
        """Raise :class:`EnvConfigError` with one line when this machine cannot run the simulator.

        Args:
            uses_gpu: env workers are placed on GPUs.
            joining_cluster: the env workers run on other machines (nothing can be checked here).
        """
