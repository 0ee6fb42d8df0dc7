"""GRPO raises the Simple CNN's evaluation success on a probe task (slow: about 3 minutes).

configs/cpu_probe_cnn.yaml through the full Ray + FSDP2 path: the CNN SFT base (pre-trained on the probe expert's
demos with label smoothing 0.8, made by the run itself on first use), the base model evaluated first, then GRPO
on one task (8 steps) and the trained model evaluated (sampled, as training rollouts; 32 episodes each). Measured
2026-12-06 on task 1 (top): base 0.22, after GRPO 0.97 (≥ 0.9 required).
"""

import json

import pytest
from probe_runs import run_cli, scalar_curve

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TASK, EVAL_SUCCESS = 1, 0.9


def test_grpo_raises_the_simple_cnn_success_on_a_probe_task(probe_base, tmp_path):
    log_path = tmp_path / "run"
    run_cli("vlacrl.cli.crl", [
        f"actor.checkpoint_load_path={tmp_path / 'cnn' / 'best_checkpoint.pt'}", "actor.create_tiny_checkpoint=true",
        f"actor.tiny_sft.demo_dir={probe_base['demos']}", f"runner.logger.log_path={log_path}",
        f"crl.tasks=[{TASK}]", f"crl.eval_tasks=[{TASK}]", "crl.eval_base=True", "env.eval.num_envs=32",
    ], config="cpu_probe_cnn", timeout=1800)  # fmt: skip
    assert (tmp_path / "cnn" / "best_checkpoint.pt").exists()
    rows = {
        r["label"]: r["success"][0] for r in json.loads((log_path / "success_matrix_seed1234.json").read_text())["rows"]
    }
    print(f"Simple CNN on probe task {TASK}: base {rows['base']:.2f}, after GRPO {rows['stage_0']:.2f}")
    assert rows["stage_0"] >= EVAL_SUCCESS and rows["stage_0"] > rows["base"], rows
    assert scalar_curve(log_path / f"task_{TASK}_seed1234" / "tensorboard", "train/actor/grad_norm")[0] > 0
