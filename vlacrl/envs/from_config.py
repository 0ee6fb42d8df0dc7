"""Build vector envs from the Hydra ``env.train`` / ``env.eval`` sections (reference keys), for any simulator."""

from __future__ import annotations

from typing import Any, Mapping

from vlacrl.envs.registry import simulator_for
from vlacrl.envs.vector_env import VectorEnv, VectorEnvConfig
from vlacrl.envs.video import VideoConfig


def vector_env_config(env_cfg: Mapping[str, Any], num_envs: int, *, record_video: bool = True) -> VectorEnvConfig:
    """One env worker's (or pipeline stage's) envs from a resolved ``env.<split>`` mapping.

    Args:
        env_cfg: the resolved section (``simulator_type``, ``task_suite_name``, ``max_episode_steps``, ...).
        num_envs: envs of this worker/stage (the config's ``num_envs`` is the total before splitting).
        record_video: False turns videos off for this worker (e.g. ranks other than ``save_rank``).
    """
    video = dict(env_cfg.get("video_cfg") or {})
    if env_cfg.get("only_eval"):
        mode = "eval"
    elif env_cfg.get("use_ordered_reset_state_ids", True):
        mode = "train"
    else:
        mode = "random"
    return VectorEnvConfig(
        num_envs=num_envs,
        group_size=int(env_cfg.get("group_size", 1)),
        task_ids=list(env_cfg["fixed_task_ids"]) if env_cfg.get("fixed_task_ids") is not None else None,
        mode=mode,
        use_fixed_reset_state_ids=bool(env_cfg.get("use_fixed_reset_state_ids", True)),
        auto_reset=bool(env_cfg.get("auto_reset", False)),
        ignore_terminations=bool(env_cfg.get("ignore_terminations", False)),
        reward_coef=float(env_cfg.get("reward_coef", 5.0)),
        use_rel_reward=bool(env_cfg.get("use_rel_reward", True)),
        seed=int(env_cfg.get("seed", 0)),
        num_processes=env_cfg.get("num_processes"),
        max_restarts=int(env_cfg.get("max_env_restarts", 2)),
        sim=simulator_for(env_cfg).sim_config(env_cfg),
        video=VideoConfig(
            save_video=bool(video.get("save_video", False)) and record_video,
            save_frequency=int(video.get("save_frequency", 1)),
            info_on_video=bool(video.get("info_on_video", True)),
            video_base_dir=str(video.get("video_base_dir", "videos")),
        ),
    )


def make_vector_env(
    env_cfg: Mapping[str, Any],
    num_envs: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    record_video: bool = True,
    cuda_device: int | None = None,
) -> VectorEnv:
    """The vector env of ``env_cfg``'s simulator for one env worker (or pipeline stage)."""
    config = vector_env_config(env_cfg, num_envs, record_video=record_video)
    return VectorEnv(config, simulator_for(env_cfg), rank=rank, world_size=world_size, cuda_device=cuda_device)
