"""Build :class:`VectorEnvConfig` from the Hydra ``env.train`` / ``env.eval`` sections (reference keys)."""

from __future__ import annotations

from typing import Any, Mapping

from vlacrl.envs.libero.sim import SimConfig
from vlacrl.envs.libero.vector_env import VectorEnvConfig
from vlacrl.envs.libero.video import VideoConfig


def vector_env_config(env_cfg: Mapping[str, Any], num_envs: int, *, record_video: bool = True) -> VectorEnvConfig:
    """One env worker's (or pipeline stage's) envs from a resolved ``env.<split>`` mapping.

    Args:
        env_cfg: the resolved section (``task_suite_name``, ``max_episode_steps``, ``group_size``, ...).
        num_envs: envs of this worker/stage (the config's ``num_envs`` is the total before splitting).
        record_video: False turns videos off for this worker (e.g. ranks other than ``save_rank``).
    """
    init = env_cfg.get("init_params") or {}
    size = int(init.get("camera_heights", 256))
    if int(init.get("camera_widths", size)) != size:
        raise ValueError("camera_heights and camera_widths must be equal (square images)")
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
        sim=SimConfig(
            suite=str(env_cfg["task_suite_name"]),
            cameras=tuple(env_cfg.get("cameras") or ("agentview",)),
            image_size=size,
            max_episode_steps=int(env_cfg.get("max_episode_steps", 512)),
        ),
        video=VideoConfig(
            save_video=bool(video.get("save_video", False)) and record_video,
            save_frequency=int(video.get("save_frequency", 1)),
            info_on_video=bool(video.get("info_on_video", True)),
            video_base_dir=str(video.get("video_base_dir", "videos")),
        ),
    )
