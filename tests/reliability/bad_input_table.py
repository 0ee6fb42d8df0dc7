"""The bad-input table: every case the reliability test runs, and the table of docs/reliability.md made from it.

Each case is a command as a user types it, the bad input in words, and the text its one ``error:`` line must
contain. ``{d}`` is the test's input folder (tiny model, damaged copies, demo and replay files: ``write_inputs``
in test_bad_inputs.py), ``{log}`` the case's log dir (it must never be created). The Hydra commands also get
``actor.checkpoint_load_path={d}/tiny`` and ``runner.logger.log_path={log}`` before the case's own arguments.

Regenerate the docs table after editing the cases:  python tests/reliability/bad_input_table.py --write
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: doc_tables, also when run as a script
from doc_tables import main, marked_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
TABLE = "bad-input-table"  # the markers in DOC
HYDRA_COMMANDS = {"vlacrl-train": "train", "vlacrl-eval": "eval", "vlacrl-crl": "crl"}
ARGPARSE_COMMANDS = {
    "vlacrl-metrics": "metrics",
    "vlacrl-make-tiny-checkpoint": "make_tiny_checkpoint",
    "vlacrl-inspect-model": "inspect_model",
    "vlacrl-rollout": "rollout",
    "vlacrl-precompute-logits": "precompute_logits",
    "vlacrl-train-simple-cnn": "train_simple_cnn",
}


@dataclass(frozen=True)
class Case:
    """One bad input: ``command`` (a console command or a launcher ``.sh``), its arguments, the message text."""

    name: str
    what: str
    command: str
    args: tuple[str, ...]
    message: str
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset the variable
    #: paths (with ``{d}``) that must not exist afterwards besides the log dir (e.g. a mistyped model path)
    absent: tuple[str, ...] = ()


def case(name, what, command, args, message, **kw) -> Case:
    return Case(name, what, command, tuple(args), message, **kw)


TRAIN, EVAL, CRL = "vlacrl-train", "vlacrl-eval", "vlacrl-crl"
NOT_ADAPTER = "is not a LoRA adapter directory"
METHODS = "['crl_vla', 'der', 'er', 'ewc', 'ire_vla', 'multitask', 'seq_ft', 'seq_ft_reorder', 'slca'"
CNN = ("--config-name", "cpu_simple_cnn")

CASES: tuple[Case, ...] = (
    # --- the method and the task lists
    case("unknown_method_group", "unknown method, as a config group", CRL, ["crl=bogus"],
         "crl=bogus: there is no configs/crl/bogus.yaml; choose one of"),
    case("unknown_method", "unknown method, as a key", TRAIN, ["crl.method=bogus"],
         f"unknown crl.method 'bogus'; choose one of {METHODS}"),
    case("bad_method_key", "a method key out of range", CRL, ["crl=er", "crl.replay_tasks=some"],
         "crl.method=er: crl.replay_tasks must be one of ('all', 'seen'), got 'some'"),
    case("merge_coefficient", "weight merge coefficient outside [0, 1]", CRL,
         ["crl=weight_merge", "crl.merge_coefficient=2"], "crl.method=weight_merge: crl.merge_coefficient must be"),
    case("misspelled_method_key", "a misspelled method key", TRAIN, ["crl=ewc", "crl.ewc_lamda=1"],
         "crl.ewc_lamda is not a key of this config (To append to your config use +crl.ewc_lamda=1); did you mean "
         "crl.ewc_lambda?"),
    case("added_unknown_method_key", "an added key the method does not read", TRAIN, ["crl=ewc", "+crl.ewc_lamda=1"],
         "crl=ewc does not read crl.ewc_lamda (did you mean crl.ewc_lambda?)"),
    case("method_key_wrong_type", "a method key of the wrong type", CRL, ["crl=er", "crl.bc_coeff=abc"],
         "crl.method=er: crl.bc_coeff must be a number, got 'abc'"),
    case("reference_use_ewc", "the reference's EWC switch", TRAIN, ["+algorithm.use_ewc=True"],
         "algorithm.use_ewc=True is the reference's switch, which vlacrl does not read: choose the method with "
         "crl=ewc"),
    case("reference_replay", "the reference's replay switch", TRAIN, ["algorithm.use_experience_replay=True"],
         "choose the method with crl=er"),
    case("reference_slca_rate", "the reference's SLCA rate without crl=slca", TRAIN, ["+actor.optim.llm_lora_lr=1e-5"],
         "choose the method with crl=slca and set crl.llm_lora_lr"),
    case("override_grammar", "an override Hydra cannot parse", TRAIN, ["runner.max_epochs=[1"],
         "no viable alternative at input '[1'"),
    case("malformed_task_range", "malformed task range", CRL, ["crl.tasks='0,x'"],
         "crl.tasks: cannot parse '0,x'; use k, 'a,b'"),
    case("reversed_task_range", "reversed task range", CRL, ["crl.tasks='3,1'"],
         "crl.tasks: '3,1' must be one id k or a range 'a,b' with a < b"),
    case("empty_task_list", "empty task list", CRL, ["crl.tasks=[]"], "crl.tasks: [] names no task"),
    case("later_start_without_previous_task", "a sequence starting after the first task, task k-1 never trained", CRL,
         ["crl.first_task=0", "crl.tasks=[2]"], "crl.tasks starts at task 2, after the suite's first task 0"),
    case("repeated_task", "a task listed twice", CRL, ["crl.tasks=[1,2,1]"],
         "crl.tasks: task(s) [1] appear more than once in [1, 2, 1]; list each task once"),
    case("repeated_eval_task", "an evaluation task listed twice", CRL, ["crl.eval_tasks=[0,0]"],
         "crl.eval_tasks: task(s) [0] appear more than once"),
    case("task_out_of_range", "task id out of range (training split)", EVAL, ["env.fixed_task_ids=[12]"],
         "env.train: task id(s) [12] out of range"),
    case("crl_task_out_of_range", "task id out of range (sequence)", CRL, ["crl.tasks=12"],
         "crl.tasks: task id(s) [12] out of range for libero_spatial: it has tasks 0..9"),
    case("eval_task_out_of_range", "evaluation task id out of range", CRL, ["crl.eval_tasks=[0,10]"],
         "crl.eval_tasks: task id(s) [10] out of range for libero_spatial"),
    case("unknown_suite", "unknown LIBERO suite", TRAIN, ["env.train.task_suite_name=libero_100"],
         "unknown LIBERO suite 'libero_100'"),
    case("bad_camera_override", "a robustness-suite camera pose of the wrong length", TRAIN,
         ["+env.eval.init_params.camera_overrides_per_task=[{agentview:{pos:[0.6,0.0]}}]"],
         "env.eval: init_params.camera_overrides_per_task[0].agentview.pos must be a list of 3 numbers"),
    case("random_action_training", "the random-action baseline in a training run", TRAIN,
         ["rollout.random_action=True"], "rollout.random_action=True is an evaluation baseline"),
    case("unknown_simulator", "unknown simulator", TRAIN, ["env.train.simulator_type=gazebo"],
         "env.train.simulator_type:"),
    # --- values of the wrong type or range
    case("negative_epochs", "negative epochs", TRAIN, ["runner.max_epochs=-1"],
         "runner.max_epochs must be an integer >= 1, got -1"),
    case("epochs_not_a_number", "epochs that are not a number", TRAIN, ["runner.max_epochs=abc"],
         "runner.max_epochs must be an integer >= 1, got 'abc'"),
    case("zero_eval_epochs", "zero evaluation epochs", EVAL, ["algorithm.eval_rollout_epoch=0"],
         "algorithm.eval_rollout_epoch must be an integer >= 1, got 0"),
    case("lr_not_a_number", "learning rate that is not a number", TRAIN, ["actor.optim.lr=abc"],
         "actor.optim.lr must be a number > 0, got 'abc'"),
    case("negative_lr", "negative learning rate", TRAIN, ["actor.optim.lr=-1e-4"],
         "actor.optim.lr must be a number > 0, got -0.0001"),
    case("lora_rank_zero", "LoRA rank 0", TRAIN, ["actor.model.lora_rank=0"],
         "actor.model.lora_rank must be an integer >= 1, got 0"),
    case("zero_world_size", "zero CPU workers", TRAIN, ["cluster.cpu_world_size=0"],
         "cluster.cpu_world_size must be an integer >= 1, got 0"),
    case("zero_temperature", "sampling temperature 0", TRAIN, ["algorithm.sampling_params.temperature_train=0"],
         "algorithm.sampling_params.temperature_train must be a number > 0, got 0"),
    case("gamma_above_one", "discount above 1", TRAIN, ["algorithm=ppo", "algorithm.gamma=1.5"],
         "algorithm.gamma must be a number in [0, 1], got 1.5"),
    case("flag_not_boolean", "a switch that is not true/false", TRAIN, ["runner.only_eval=yes"],
         "runner.only_eval must be true or false, got 'yes'"),
    case("group_size_zero", "GRPO group size 0", TRAIN, ["algorithm.group_size=0"],
         "algorithm.group_size must be an integer >= 1, got 0"),
    case("dual_clip_below_one", "dual-clip bound not above 1", TRAIN, ["algorithm.clip_ratio_c=0.5"],
         "algorithm.clip_ratio_c must be a number > 1, got 0.5"),
    case("episode_not_chunks", "episode length not a multiple of the chunk", TRAIN, ["env.train.max_episode_steps=20"],
         "env.train.max_episode_steps (20) must be a multiple of the chunk length (8)"),
    case("batch_not_dividing", "batch sizes that do not divide", TRAIN, ["actor.global_batch_size=3"],
         "actor.global_batch_size (3) must be divisible by actor.micro_batch_size (2) x the actor world size (1)"),
    case("pipeline_stages", "pipeline stages that split a GRPO group", TRAIN, ["rollout.pipeline_stage_num=3"],
         "rollout.pipeline_stage_num (3) must split"),
    case("unknown_logger", "unknown logger backend", TRAIN, ["runner.logger.logger_backends=[bogus]"],
         "runner.logger.logger_backends: unknown ['bogus']"),
    case("wandb_mode", "unknown WandB mode", TRAIN, ["runner.logger.wandb.mode=maybe"],
         "runner.logger.wandb.mode must be online, offline or disabled"),
    case("tiny_checkpoint_mode", "unknown tiny-checkpoint mode", TRAIN, ["actor.create_tiny_checkpoint=maybe"],
         "actor.create_tiny_checkpoint must be auto, true or false, got 'maybe'"),
    case("unknown_model_name", "unknown model family", TRAIN, ["actor.model.model_name=resnet"],
         "actor.model.model_name: unknown 'resnet'"),
    case("gpu_without_gpus", "GPU placement without GPUs", TRAIN,
         ["~cluster.component_placement", "+cluster.component_placement={actor:'0-1',env:all,rollout:all}"],
         "actor is placed on GPUs 0-1 but this machine has no GPUs"),
    case("rollouts_exceed_envs", "more rollout workers than env workers can share", TRAIN,
         ["~cluster.component_placement", "+cluster.component_placement={actor:'cpu:1',env:'cpu:1',rollout:'cpu:2'}"],
         "1 env workers cannot be shared evenly by 2 rollout workers"),
    case("node_resources_component", "node resources for an unknown component", TRAIN,
         ["cluster.node_resources={critic:sim}"], "cluster.node_resources: unknown component 'critic'"),
    # --- model directories and adapters
    case("missing_model_dir", "missing model dir", TRAIN, ["actor.checkpoint_load_path={d}/none",
                                                           "actor.create_tiny_checkpoint=false"],
         "actor.checkpoint_load_path: Bad model directory {d}/none: the directory does not exist"),
    case("mistyped_model_dir", "mistyped model dir with the CPU default (no tiny model is written there)", TRAIN,
         ["actor.checkpoint_load_path={d}/typo"], "makes a tiny checkpoint only under", absent=("{d}/typo",)),
    case("config_not_json", "model dir whose config.json is not JSON", TRAIN,
         ["actor.checkpoint_load_path={d}/model_not_json"], "config.json is not valid JSON"),
    case("config_not_openvla", "model dir whose config.json is not an OpenVLA config", EVAL,
         ["actor.checkpoint_load_path={d}/model_gpt2"], "config.json has model_type 'gpt2', expected 'openvla'"),
    case("corrupted_model_shard", "truncated model shard", TRAIN, ["actor.checkpoint_load_path={d}/model_corrupted"],
         "Bad model directory {d}/model_corrupted: a weight file is corrupted or truncated"),
    case("missing_adapter", "missing adapter", EVAL, ["+actor.model.lora_path={d}/none"],
         "actor.model.lora_path: {d}/none " + NOT_ADAPTER),
    case("corrupted_adapter", "corrupted adapter", TRAIN, ["+actor.model.lora_path={d}/corrupted"],
         "actor.model.lora_path: {d}/corrupted/adapter_model.safetensors is corrupted or truncated"),
    case("truncated_adapter", "truncated adapter", TRAIN, ["+actor.model.lora_path={d}/truncated"],
         "incomplete metadata, file not fully covered"),
    case("merged_adapter_corrupted", "a corrupted adapter among those to merge", TRAIN,
         ["+actor.model.lora_paths=[{d}/rank8,{d}/corrupted]"],
         "actor.model.lora_paths: {d}/corrupted/adapter_model.safetensors is corrupted"),
    case("adapter_rank", "adapter of another rank", TRAIN, ["+actor.model.lora_path={d}/rank8"],
         "actor.model.lora_path: {d}/rank8 has rank r=8 but actor.model.lora_rank is 32"),
    case("adapter_targets", "adapter of another model (target modules)", CRL,
         ["+actor.model.lora_path={d}/foreign_targets"],
         "its target_modules ['dense', 'query_key_value'] name no module of this model"),
    case("adapter_shapes", "adapter of another model (shapes)", TRAIN, ["+actor.model.lora_path={d}/foreign_shapes"],
         "1 adapter tensor(s) do not fit the model's layers or the adapter's r"),
    case("adapter_other_modules", "adapter of another model (layers)", TRAIN,
         ["+actor.model.lora_path={d}/other_modules"], "tensor(s) belong to modules this model does not have"),
    case("cnn_missing_checkpoint", "missing Simple CNN checkpoint", TRAIN,
         [*CNN, "actor.checkpoint_load_path={d}/none/best_checkpoint.pt", "actor.create_tiny_checkpoint=false"],
         "Simple CNN checkpoint {d}/none/best_checkpoint.pt not found"),
    case("cnn_with_lora", "Simple CNN with LoRA", TRAIN, [*CNN, "actor.model.is_lora=true"],
         "the Simple CNN trains all its weights"),
    case("cnn_with_lora_method", "a LoRA-only method on the Simple CNN", CRL, [*CNN, "crl=ewc"],
         "actor.model.model_name=simple_cnn: crl=ewc trains LoRA adapters"),
    # --- the method's files
    case("missing_fisher", "missing Fisher file (EWC)", TRAIN,
         ["crl=ewc", "crl.previous_fisher_path={d}/none/ewc_data.pt"],
         "crl.previous_fisher_path: {d}/none/ewc_data.pt is missing"),
    case("missing_demo_dir", "missing replay dir (ER)", CRL, ["crl=er", "crl.dataset_dir={d}/none"],
         "crl.dataset_dir: replay data directory {d}/none does not exist"),
    case("replay_smaller_than_a_batch", "replay data smaller than one replay micro-batch (ER)", CRL,
         ["crl=er", "crl.dataset_dir={d}/replay_no_logits", "crl.replay_batch_size=16"],
         "the replay files hold 2 samples, fewer than one replay micro-batch of 16"),
    case("der_without_logits", "DER replay files without cached logits", CRL,
         ["crl=der", "crl.dataset_dir={d}/replay_no_logits"], "has no processed_action_logits (DER with cached logits"),
    # --- the log dir and resuming
    case("log_path_under_a_file", "log dir under a file", TRAIN, ["runner.logger.log_path={d}/a_file/run"],
         "runner.logger.log_path: {d}/a_file/run cannot be created: {d}/a_file is a file, not a directory"),
    case("resume_missing_dir", "resume from a dir that does not exist", TRAIN, ["runner.resume={d}/none"],
         "runner.resume must be auto, disable or an existing checkpoint dir"),
    case("resume_trainer_state", "resume: damaged trainer_state.json", TRAIN,
         ["runner.logger.log_path={d}/resume_state"], "trainer_state.json is unreadable or not JSON"),
    case("resume_optimizer_shard", "resume: truncated optimizer shard", TRAIN,
         ["runner.logger.log_path={d}/resume_optim"], "actor/optim/__0_0.distcp is 1000 bytes, its index needs"),
    case("resume_optimizer_index", "resume: missing optimizer index", TRAIN,
         ["runner.logger.log_path={d}/resume_index"], "the optimizer index"),
    case("resume_adapter", "resume: truncated adapter", TRAIN, ["runner.logger.log_path={d}/resume_adapter"],
         "global_step_2/actor/adapter_model.safetensors is corrupted or truncated"),
    case("resume_value_head", "resume: truncated value head", TRAIN,
         ["algorithm=ppo", "runner.logger.log_path={d}/resume_value_head"],
         "actor/value_head.safetensors is corrupted or truncated"),
    # --- the simulator
    case("no_render_backend", "unknown render backend", TRAIN, [], "MUJOCO_GL=nonexistent: unknown render backend",
         env={"MUJOCO_GL": "nonexistent"}),
    case("render_backend_fails", "a render backend that cannot run here", TRAIN, [],
         "MuJoCo cannot render with MUJOCO_GL=glfw", env={"MUJOCO_GL": "glfw", "DISPLAY": None}),
    # --- the other commands
    case("metrics_success_above_one", "success above 1", "vlacrl-metrics", ["{d}/matrix_above_one"],
         "success 1.5 of row 'stage_0', task 0 is not a fraction in [0, 1]"),
    case("metrics_repeated_label", "a row label twice", "vlacrl-metrics", ["{d}/matrix_repeated_label"],
         "row label(s) ['stage_0'] appear more than once"),
    case("metrics_missing_run", "a run dir that does not exist", "vlacrl-metrics", ["{d}/none"],
         "{d}/none: not a directory"),
    case("metrics_out_under_a_file", "output under a file", "vlacrl-metrics",
         ["{d}/matrix_above_one", "--out", "{d}/a_file/metrics"], "{d}/a_file is a file, not a directory"),
    case("tiny_out_under_a_file", "output under a file", "vlacrl-make-tiny-checkpoint", ["{d}/a_file/tiny"],
         "{d}/a_file/tiny cannot be created: {d}/a_file is a file"),
    case("tiny_out_not_empty", "a non-empty output dir", "vlacrl-make-tiny-checkpoint", ["{d}/rank8"],
         "{d}/rank8 is not empty (use --force to overwrite)"),
    case("inspect_truncated_shard", "truncated model shard", "vlacrl-inspect-model", ["{d}/model_corrupted"],
         "a weight file is corrupted or truncated"),
    case("inspect_missing_dir", "missing model dir", "vlacrl-inspect-model", ["{d}/none"],
         "Bad model directory {d}/none: the directory does not exist"),
    case("rollout_task_not_a_number", "a task id that is not a number", "vlacrl-rollout",
         ["--simulator", "probe", "--tasks", "a", "--out", "{log}"], "argument --tasks: 'a' is not a comma-separated"),
    case("rollout_task_out_of_range", "a task id out of range", "vlacrl-rollout",
         ["--simulator", "probe", "--tasks", "12", "--out", "{log}"], "out of range"),
    case("rollout_out_under_a_file", "output under a file", "vlacrl-rollout",
         ["--simulator", "probe", "--out", "{d}/a_file/out"], "{d}/a_file is a file, not a directory"),
    case("precompute_missing_demo_dir", "missing demo dir", "vlacrl-precompute-logits",
         ["--no-logits", "--input", "{d}/none", "--output-dir", "{log}"], "input {d}/none does not exist"),
    case("precompute_out_under_a_file", "output under a file", "vlacrl-precompute-logits",
         ["--no-logits", "--input", "{d}/demos", "--output-dir", "{d}/a_file/out"], "{d}/a_file is a file"),
    case("cnn_sft_out_under_a_file", "output under a file", "vlacrl-train-simple-cnn",
         ["--data", "{d}/demos", "--out", "{d}/a_file/cnn"], "{d}/a_file is a file, not a directory"),
    # --- the launchers: the Python side's error reaches the user
    case("launcher_task_out_of_range", "task id out of range", "run_embodiment_sequential.sh",
         ["12", "", "", "", ""], "crl.tasks: task id(s) [12] out of range"),
    case("launcher_missing_checkpoint", "missing adapter to continue", "run_embodiment_ewc.sh",
         ["0", "{d}/none", "", "", ""], "actor.model.lora_path: {d}/none " + NOT_ADAPTER),
    case("launcher_eval_missing_run", "missing run to evaluate", "eval_embodiment.sh", ["{d}/no_run", "10", ""],
         "{d}/no_run/checkpoints/global_step_10/actor " + NOT_ADAPTER),
)  # fmt: skip


def shown_command(c: Case) -> str:
    """The command as a user would type it (``{d}`` → ``D``, the log dir → ``LOG``)."""
    env = " ".join(f"{k}={v}" if v is not None else f"-u {k}" for k, v in c.env.items())
    words = [c.command if not c.command.endswith(".sh") else f"bash examples/crl_experiment/{c.command}"]
    words += [repr(a) if a == "" or " " in a else a for a in c.args]
    text = " ".join(words).replace("{d}", "D").replace("{log}", "LOG")
    return f"{'env ' + env + ' ' if env else ''}{text}"


def markdown_table() -> str:
    header = "| bad input | command (D: a folder of test inputs) | the `error:` line contains | case |"
    lines = [header, "|---|---|---|---|"]
    for c in CASES:
        message = c.message.replace("{d}", "D").replace("|", "\\|")
        lines.append(f"| {c.what} | `{shown_command(c)}` | `{message}` | `{c.name}` |")
    return "\n".join(lines)


def documented_table() -> str:
    return marked_block(DOC, TABLE)


if __name__ == "__main__":
    main(DOC, TABLE, markdown_table)
