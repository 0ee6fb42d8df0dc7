"""Driver-side behaviour of the methods: registry, task schedules (reorder, multitask), the exact override keys
each method gives the continual runner, and the LoRA-scale evaluation option."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vlacrl.crl.base import StageRecord
from vlacrl.crl.common import MethodConfigError
from vlacrl.crl.registry import UnknownMethodError, build_method, method_names

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "crl"
MINE = ("seq_ft", "seq_ft_reorder", "ewc", "weight_merge", "slca", "multitask")


def _method(name: str, **params):
    return build_method({"crl": {"method": name, **params}, "actor": {"optim": {"lr": 2e-5}}})


def _history(n: int) -> list[StageRecord]:
    return [
        StageRecord(i, [i], f"/runs/task_{i}", f"/runs/task_{i}/checkpoints/global_step_10/actor",
                    {"fisher_path": f"/runs/task_{i}/ewc_data.pt"})
        for i in range(n)
    ]  # fmt: skip


def test_registry_names_default_and_unknown():
    assert set(MINE) <= set(method_names())
    assert build_method({"crl": {"tasks": [0]}}).name == "seq_ft"  # crl.method defaults to seq_ft
    with pytest.raises(UnknownMethodError, match="unknown crl.method 'nope'"):
        build_method({"crl": {"method": "nope"}})


@pytest.mark.parametrize("name", MINE)
def test_config_group_files_build_their_method(name):
    params = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"))
    assert params["method"] == name
    assert build_method({"crl": params, "actor": {"optim": {"lr": 2e-5}}}).name == name


def test_seq_ft_chains_the_previous_adapter():
    method, history = _method("seq_ft"), _history(2)
    assert method.task_schedule([0, 1, 2]) == [[0], [1], [2]]
    assert method.train_overrides(0, []) == {}
    assert method.train_overrides(2, history) == {"actor.model.lora_path": history[1].adapter_dir}
    assert method.eval_overrides(history[1], history[:1]) == {"actor.model.lora_path": history[1].adapter_dir}
    with pytest.raises(MethodConfigError):
        method.train_overrides(1, [StageRecord(0, [0], "/r", None)])


def test_reordered_sequences():
    assert _method("seq_ft", order=[4, 2, 0, 1, 3]).task_schedule([0, 1, 2, 3, 4]) == [[4], [2], [0], [1], [3]]
    assert _method("seq_ft_reorder").task_schedule([3, 1, 2]) == [[3], [1], [2]]  # crl.tasks given as a list
    assert _method("seq_ft_reorder", order=[2, 0, 1]).task_schedule([0, 1, 2]) == [[2], [0], [1]]
    with pytest.raises(MethodConfigError, match="permutation"):
        _method("seq_ft_reorder", order=[2, 0]).task_schedule([0, 1, 2])
    with pytest.raises(MethodConfigError, match="repeats"):
        _method("seq_ft_reorder", order=[1, 1, 2]).task_schedule([0, 1, 2])
    history = _history(1)
    assert _method("seq_ft_reorder", order=[1, 0]).train_overrides(1, history) == {
        "actor.model.lora_path": history[0].adapter_dir
    }


def test_multitask_is_one_sorted_stage():
    method = _method("multitask")
    assert method.task_schedule([4, 0, 2]) == [[0, 2, 4]]
    assert method.train_overrides(0, []) == {}
    with pytest.raises(MethodConfigError):
        method.task_schedule([1, 1])


def test_eval_lora_scale_option():
    stage = _history(1)[0]
    assert _method("seq_ft", eval_lora_scale=0.3).eval_overrides(stage, []) == {
        "actor.model.lora_path": stage.adapter_dir, "actor.model.lora_scale": 0.3,
    }  # fmt: skip
    assert _method("slca", eval_lora_scale=0.0).eval_overrides(stage, [])["actor.model.lora_scale"] == 0.0
    with pytest.raises(ValueError):
        _method("seq_ft", eval_lora_scale=1.5).eval_overrides(stage, [])


def test_ewc_overrides_pass_adapter_and_fisher():
    method, history = _method("ewc"), _history(2)
    assert method.train_overrides(0, []) == {}
    assert method.train_overrides(2, history) == {
        "actor.model.lora_path": history[1].adapter_dir,
        "crl.previous_fisher_path": "/runs/task_1/ewc_data.pt",
    }
    with pytest.raises(MethodConfigError, match="Fisher"):
        method.train_overrides(1, [StageRecord(0, [0], "/r", "/r/a")])


def test_weight_merge_overrides():
    method, history = _method("weight_merge", merge_coefficient=0.8), _history(3)
    adapters = [r.adapter_dir for r in history]
    assert method.train_overrides(0, []) == {"actor.model.previous_lora_merge_coefficient": 0.8}
    assert method.train_overrides(2, history[:2]) == {
        "actor.model.lora_paths": adapters[:2],
        "actor.model.previous_lora_merge_coefficient": 0.8,
        "actor.model.lora_path": None,  # a fresh adapter
    }
    assert method.eval_overrides(history[0], []) == {
        "actor.model.previous_lora_merge_coefficient": 0.8,
        "actor.model.lora_path": adapters[0],
        "actor.model.lora_scale": 0.8,
    }
    assert method.eval_overrides(history[2], history[:2]) == {
        "actor.model.lora_paths": adapters[:2],
        "actor.model.previous_lora_merge_coefficient": 0.8,
        "actor.model.lora_path": adapters[2],
        "actor.model.lora_scale": 0.8,
    }
    assert _method("weight_merge").coefficient == 0.5
    scaled = _method("weight_merge", eval_lora_scale=1.0).eval_overrides(history[1], history[:1])
    assert scaled["actor.model.lora_scale"] == 1.0 and scaled["actor.model.previous_lora_merge_coefficient"] == 0.5
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(MethodConfigError):
            _method("weight_merge", merge_coefficient=bad)
