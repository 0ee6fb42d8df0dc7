"""Bad configs fail before Ray starts, each with one line naming the key."""

import pytest

from vlacrl.config.compose import compose
from vlacrl.config.validate import ConfigError, validate_config
from vlacrl.distributed.placement import PlacementError, resolve_placement
from vlacrl.models.openvla_oft import write_tiny_checkpoint

MAIN = "crl_experiment/libero_spatial_grpo_openvlaoft_spatial"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model"))


def cfg_with(model_dir, *overrides):
    return compose(MAIN, [f"actor.checkpoint_load_path={model_dir}", *overrides])


def test_reference_config_sizes(model_dir):
    sizes = validate_config(cfg_with(model_dir), num_gpus=8)
    assert sizes.actor_world_size == 8 and sizes.env_world_size == 8
    assert sizes.samples_per_step == 65536 and sizes.minibatches_per_step == 8
    assert sizes.microbatches_per_minibatch == 32 and sizes.train_envs_per_worker == 8


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["actor.global_batch_size=8000"], "actor.global_batch_size \\(8000\\) must be divisible"),
        (["actor.global_batch_size=3072", "actor.micro_batch_size=32"], "65536 chunk samples"),
        (["env.fixed_task_ids=[12]"], "task id\\(s\\) \\[12\\] out of range for libero_spatial"),
        (["env/train=libero_goal", "env.train.task_suite_name=libero_100"], "unknown LIBERO suite 'libero_100'"),
        (["algorithm.num_group_envs=6"], "num_group_envs \\(6\\) must be divisible by the env world size"),
        (["env.train.max_episode_steps=500"], "multiple of the chunk length"),
        (["rollout.pipeline_stage_num=3"], "pipeline_stage_num \\(3\\) must split"),
        (["runner.logger.wandb.mode=maybe"], "wandb.mode"),
        (["+actor.model.lora_path=/nonexistent/adapter"], "lora_path: /nonexistent/adapter is not a LoRA adapter"),
        (["~cluster.component_placement", "+cluster.component_placement={actor:'0-1',env:all,rollout:all}"], "no GPUs"),
        (
            ["~cluster.component_placement", "+cluster.component_placement={actor:'0-1',env:'4-5',rollout:'4-7'}"],
            "2 env workers cannot be shared evenly by 4 rollout workers",
        ),
        (
            [
                "~cluster.component_placement",
                "+cluster.component_placement={actor:'0-7',env:'cpu:2',rollout:'cpu:2'}",
                "algorithm.num_group_envs=4",
            ],
            "num_group_envs \\(4\\) must be divisible by the actor world size \\(8\\): each actor rank trains on whole",
        ),
        (["crl.method=bogus"], "unknown crl.method 'bogus'; choose one of"),
        (["crl.tasks=12"], "crl.tasks: task id\\(s\\) \\[12\\] out of range for libero_spatial"),
        (["crl.tasks='4,2'"], "crl.tasks: '4,2' must be one id k or a range 'a,b' with a < b"),
        (["crl=ewc", "crl.previous_fisher_path=/nowhere/ewc.pt"], "previous_fisher_path: /nowhere/ewc.pt is missing"),
        (["crl=er", "crl.dataset_dir=/nowhere"], "crl.dataset_dir: replay data directory /nowhere does not exist"),
        (["crl=weight_merge", "crl.merge_coefficient=2"], "crl.method=weight_merge: crl.merge_coefficient must be"),
        (["crl.tasks=[]"], "crl.tasks: \\[\\] names no task"),
        (["crl.tasks=[1,2,1]"], "crl.tasks: task\\(s\\) \\[1\\] appear more than once"),
        (["crl.eval_tasks=[0,0]"], "crl.eval_tasks: task\\(s\\) \\[0\\] appear more than once"),
        (["runner.max_epochs=-1"], "runner.max_epochs must be an integer >= 1, got -1"),
        (["runner.max_epochs=abc"], "runner.max_epochs must be an integer >= 1, got 'abc'"),
        (["algorithm.eval_rollout_epoch=0"], "algorithm.eval_rollout_epoch must be an integer >= 1, got 0"),
    ],
)
def test_bad_config_gives_one_line(model_dir, overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(cfg_with(model_dir, *overrides), num_gpus=0 if "no GPUs" in message else 8)
    assert "\n" not in str(info.value)


def test_unknown_render_backend(model_dir, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "nonexistent")
    with pytest.raises(ConfigError, match="MUJOCO_GL=nonexistent: unknown render backend; use osmesa"):
        validate_config(cfg_with(model_dir), num_gpus=8)


def test_missing_model_dir_says_where_to_put_it():
    with pytest.raises(
        ConfigError, match="actor.checkpoint_load_path: Bad model directory /nowhere/model: the directory does"
    ):
        validate_config(compose(MAIN, ["actor.checkpoint_load_path=/nowhere/model"]), num_gpus=1)


def test_placement_forms():
    colocated = resolve_placement({"actor,env,rollout": "all"}, num_gpus=4)
    assert colocated["actor"].gpu_ids == (0, 1, 2, 3) and colocated["env"].world_size == 4
    cpu = resolve_placement({"actor,env,rollout": "all"}, num_gpus=0, cpu_world_size=2)
    assert cpu["rollout"].world_size == 2 and not cpu["rollout"].uses_gpu
    split = resolve_placement({"actor": "0-1", "rollout": "2,3", "env": "cpu:2"}, num_gpus=4)
    assert split["actor"].gpu_ids == (0, 1) and split["rollout"].gpu_ids == (2, 3) and split["env"].gpu_ids is None
    with pytest.raises(PlacementError, match="GPU\\(s\\) \\[4\\]"):
        resolve_placement({"actor,env,rollout": "2-4"}, num_gpus=4)
    with pytest.raises(PlacementError, match="unknown component 'critic'"):
        resolve_placement({"actor,env,rollout,critic": "all"}, num_gpus=1)
    decoupled = resolve_placement({"actor": "cpu:1", "rollout": "cpu:2", "env": "cpu:4"}, num_gpus=0)
    assert [decoupled[c].world_size for c in ("env", "rollout", "actor")] == [4, 2, 1]
    with pytest.raises(PlacementError, match="2 env workers cannot be shared evenly by 4 rollout workers"):
        resolve_placement({"actor": "all", "rollout": "cpu:4", "env": "cpu:2"}, num_gpus=0)


CNN = "crl_experiment/libero_spatial_grpo_simple_cnn"


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["actor.checkpoint_load_path=/nowhere/best_checkpoint.pt"],
            "Simple CNN checkpoint /nowhere/best_checkpoint.pt not found",
        ),
        (["actor.model.is_lora=True"], "the Simple CNN trains all its weights"),
        (["actor.model.model_name=resnet"], "unknown 'resnet'"),
    ],
)
def test_bad_simple_cnn_configs(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(compose(CNN, overrides), num_gpus=8)
    assert "\n" not in str(info.value)
