"""``LiberoVectorEnv``: the generic :class:`~vlacrl.envs.vector_env.VectorEnv` bound to LIBERO (tools, tests)."""

from __future__ import annotations

from vlacrl.envs.libero.simulator import LiberoSimulator
from vlacrl.envs.vector_env import VectorEnv, VectorEnvConfig


class LiberoVectorEnv(VectorEnv):
    """``num_envs`` LIBERO envs stepped in action chunks (sims in sub-processes unless ``in_process``)."""

    def __init__(
        self,
        config: VectorEnvConfig,
        *,
        rank: int = 0,
        world_size: int = 1,
        cuda_device: int | None = None,
        env_vars: dict | None = None,
    ):
        super().__init__(
            config, LiberoSimulator(), rank=rank, world_size=world_size, cuda_device=cuda_device, env_vars=env_vars
        )


__all__ = ["LiberoVectorEnv", "VectorEnvConfig"]
