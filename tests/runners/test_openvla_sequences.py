"""Every continual-learning method runs a real 2-task sequence with the autoregressive OpenVLA on CPU
(``vlacrl-crl --config-name cpu_tiny_openvla``, docs/models.md): real Ray + FSDP2 (gloo) + peft LoRA + LIBERO with
the tiny random checkpoint, one global step per task, one action of 7 generated tokens per env step. Each run must
write the success matrix and chain its stages (slow: about 2 min each on an idle 2-core box)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.libero, pytest.mark.slow]

SHORT = ["runner.max_epochs=1", "runner.save_interval=1", "env.train.video_cfg.save_video=False",
         "env.eval.video_cfg.save_video=False", "crl.tasks=[0,1]", "crl.eval_tasks=[0,1]",
         "actor.global_batch_size=2", "actor.micro_batch_size=2", "env.train.max_episode_steps=4",
         "env.eval.max_episode_steps=4"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vlacrl.models.openvla_oft import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny-openvla")


@pytest.fixture(scope="module")
def demos(tmp_path_factory, write_libero_demos):
    """LIBERO-format demo files of tasks 0 and 1 (ER, DER and iRe-VLA replay them; DER computes the base logits
    online, ``crl.use_cached_logits=false``)."""
    return write_libero_demos(tmp_path_factory.mktemp("demos"), 2)


METHODS = {  # method → extra overrides ({demos}: the demo folder)
    "seq_ft": [],
    "ewc": [],
    "weight_merge": [],
    "slca": [],
    "multitask": [],
    "crl_vla": [],
    "er": ["crl.dataset_dir={demos}", "crl.demos_per_task=null", "crl.replay_batch_size=2"],
    "der": [
        "crl.dataset_dir={demos}",
        "crl.demos_per_task=null",
        "crl.replay_batch_size=2",
        "crl.use_cached_logits=false",
    ],  # fmt: skip
    "ire_vla": ["crl.dataset_dir={demos}", "crl.stage2_steps=2"],
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_a_sequence_with_openvla(tmp_path, tiny, demos, method):
    extra = [e.format(demos=demos) for e in METHODS[method]]
    cmd = [sys.executable, "-m", "vlacrl.cli.crl", "--config-name", "cpu_tiny_openvla", f"crl={method}",
           f"actor.checkpoint_load_path={tiny}", "actor.create_tiny_checkpoint=False",
           f"runner.logger.log_path={tmp_path / method}", *SHORT, *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]
    matrix = json.loads((tmp_path / method / "success_matrix_seed1234.json").read_text())
    assert matrix["tasks"] == [0, 1]
    trained = [row["trained_tasks"] for row in matrix["rows"]]
    assert trained == ([[0, 1]] if method == "multitask" else [[0], [1]])
    for row in trained:
        stage = tmp_path / method / f"task_{'_'.join(map(str, row))}_seed1234"
        assert (stage / "checkpoints" / "global_step_1" / "actor" / "adapter_model.safetensors").exists()
        config = json.loads((stage / "config.json").read_text())
        assert config["actor"]["model"]["model_name"] == "openvla"
        assert config["actor"]["model"]["num_action_chunks"] == 1
