"""Hydra configs compose with the reference's values and accept the reference's override syntax."""

import pytest
from omegaconf import OmegaConf

from vlacrl.config.compose import compose

MAIN = "crl_experiment/libero_spatial_grpo_openvlaoft_spatial"
ALL_MAIN = [
    MAIN,
    "crl_experiment/libero_spatial_grpo_openvlaoft_eval_spatial",
    "crl_experiment/libero_object_grpo_openvlaoft_object",
    "crl_experiment/libero_object_grpo_openvlaoft_eval_object",
    "crl_experiment/libero_10_grpo_openvlaoft_long",
    "crl_experiment/libero_10_grpo_openvlaoft_eval_long",
]


@pytest.mark.parametrize("name", ALL_MAIN)
def test_every_main_config_resolves(name):
    cfg = compose(name)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert set(resolved) >= {"cluster", "runner", "algorithm", "actor", "rollout", "env"}


def test_paper_default_values():
    cfg = compose(MAIN)
    assert cfg.algorithm.n_chunk_steps == 64 and cfg.env.train.num_envs == 64
    assert (cfg.algorithm.group_size, cfg.algorithm.rollout_epoch, cfg.algorithm.num_group_envs) == (8, 16, 8)
    assert (cfg.algorithm.clip_ratio_low, cfg.algorithm.clip_ratio_high) == (0.2, 0.28)
    assert cfg.algorithm.sampling_params.temperature_train == 1.6
    assert (cfg.actor.micro_batch_size, cfg.actor.global_batch_size, cfg.actor.optim.lr) == (32, 8192, 2.0e-5)
    assert cfg.actor.model.lora_rank == 32 and cfg.runner.max_epochs == 10 and cfg.runner.save_interval == 10
    assert cfg.env.eval.num_envs == 80 and cfg.env.eval.group_size == 1 and cfg.env.eval.ignore_terminations
    assert cfg.rollout.model_dir.endswith("model/Openvla-oft-SFT-libero-spatial-traj1/")


def test_suite_specific_configs():
    obj = compose("crl_experiment/libero_object_grpo_openvlaoft_object")
    assert list(obj.env.fixed_task_ids) == [5] and obj.actor.model.unnorm_key == "libero_object_no_noops"
    long = compose("crl_experiment/libero_10_grpo_openvlaoft_long")
    assert long.runner.max_epochs == 5 and long.env.train.task_suite_name == "libero_10"
    ev = compose("crl_experiment/libero_object_grpo_openvlaoft_eval_object")
    assert ev.runner.only_eval and ev.algorithm.eval_rollout_epoch == 40 and ev.actor.model.lora_scale == 1.0


def test_the_simple_cnn_reproduction_config_runs_as_the_reference_and_the_sampled_variant_learns():
    """Table 3's CNN row: greedy training rollouts, Dropout active (BatchNorm frozen in the model); the
    ``_sampled`` variant samples and keeps Dropout off (docs/methods/simple_cnn.md)."""
    reference = compose("crl_experiment/libero_spatial_grpo_simple_cnn")
    sampled = compose("crl_experiment/libero_spatial_grpo_simple_cnn_sampled")
    for cfg, expected in ((reference, True), (sampled, False)):
        assert cfg.algorithm.sampling_params.use_greedy is expected and cfg.actor.model.cnn_train_dropout is expected
        assert cfg.algorithm.sampling_params.use_greedy_eval is True and cfg.actor.model.model_name == "simple_cnn"
    for name in ("cpu_simple_cnn", "cpu_probe_cnn"):
        cfg = compose(name)
        assert not cfg.algorithm.sampling_params.use_greedy and not cfg.actor.model.cnn_train_dropout


def test_crl_vla_under_ppo_as_its_paper_states_it():
    """PPO/GAE, epsilon 0.2 on both sides, per-chunk advantages; the launchers' default stays the GRPO port."""
    cfg = compose("crl_experiment/libero_spatial_ppo_crl_vla")
    assert (cfg.algorithm.adv_type, cfg.algorithm.loss_type) == ("embodied_gae", "embodied_ppo")
    assert (cfg.algorithm.clip_ratio_low, cfg.algorithm.clip_ratio_high) == (0.2, 0.2)
    assert cfg.algorithm.reward_type == "chunk_level" and cfg.crl.method == "crl_vla"
    assert cfg.env.train.task_suite_name == "libero_spatial" and cfg.actor.optim.lr == 2.0e-5
    port = compose(MAIN, ["crl=crl_vla"])
    assert port.algorithm.adv_type == "embodied_grpo" and port.algorithm.clip_ratio_high == 0.28


def test_reference_override_habits_work():
    cfg = compose(
        MAIN,
        ["env.fixed_task_ids=[3]", "+actor.model.lora_path=/some/adapter", "runner.max_epochs=2",
         "algorithm.bc_coeff=0.03", "actor.optim.lr=1e-5", "+algorithm.use_ewc=True"],
    )  # fmt: skip
    assert list(cfg.env.train.fixed_task_ids) == [3] and list(cfg.env.eval.fixed_task_ids) == [3]
    assert cfg.actor.model.lora_path == "/some/adapter" and cfg.runner.max_epochs == 2
    assert cfg.algorithm.bc_coeff == 0.03 and cfg.actor.optim.lr == 1e-5 and cfg.algorithm.use_ewc
