"""The policy-family registry (vlacrl/models/families.py, docs/models.md): every family loads under its name, an
unknown name is one error listing the choices, nothing outside the families dispatches on a family's name, and
the chaining that used to need a CNN twin of Seq. FT comes from the family."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.config.validate import ConfigError, check_method
from vlacrl.crl.base import StageRecord
from vlacrl.crl.registry import build_method
from vlacrl.models.errors import ModelPathError
from vlacrl.models.families import FAMILIES, PolicyFamily, family_of, get_family

PACKAGE = Path(__file__).resolve().parents[2] / "vlacrl"
#: the registry and the modules that implement a family: the only places a family's name may be spelled
FAMILY_MODULES = {
    "models/families.py",
    "models/openvla_oft/family.py",
    "models/openvla/family.py",
    "models/simple_cnn_family.py",
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_registered_family_loads_under_its_name(name):
    family = get_family(name)
    assert isinstance(family, PolicyFamily) and family.name == name


def test_an_unknown_family_is_one_error_listing_the_choices():
    with pytest.raises(ModelPathError, match=r"actor.model.model_name: unknown 'resnet'; choose one of \["):
        family_of({"actor": {"model": {"model_name": "resnet"}}})
    assert family_of({}).name == "openvla_oft"  # no actor section: the default family


#: (module, literal) that are not about families: config.json's ``model_type`` of every OpenVLA(-OFT) checkpoint is
#: "openvla", which is also the autoregressive family's name
CHECKPOINT_FORMAT = {("models/openvla_oft/config.py", "openvla"), ("models/openvla_oft/presets.py", "openvla")}


def family_name_literals(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every string constant in ``path`` that is exactly a family's name."""
    tree = ast.parse(path.read_text())
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FAMILIES
    ]


def test_no_module_outside_the_families_spells_a_family_name():
    """Validation, session, workers and CRL methods ask the family; none compares ``model_name`` to a literal."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        hits = [(line, value) for line, value in family_name_literals(path) if (name, value) not in CHECKPOINT_FORMAT]
        if name not in FAMILY_MODULES and hits:
            found[name] = hits
    assert found == {}


def test_the_scan_finds_a_family_name_where_one_is_spelled(tmp_path):
    """The scan above can fail: a dispatch on the name, as the code had before the families, is found."""
    module = tmp_path / "dispatch.py"
    module.write_text('def f(cfg):\n    return cfg["model_name"] == "simple_cnn"\n')
    assert family_name_literals(module) == [(2, "simple_cnn")]


def test_seq_ft_chains_and_evaluates_the_cnn_through_its_family():
    """``crl=simple_cnn`` is Seq. FT: stage k starts from stage k-1's ``model.pt`` and is evaluated through
    ``rollout.checkpoint_path`` (the reference's CNN evaluation key), as the removed CNN twin module did."""
    cfg = compose("cpu_simple_cnn")
    method = build_method(OmegaConf.to_container(cfg, resolve=True))
    stage = StageRecord(0, [0], "/runs/task_0", "/runs/task_0/checkpoints/global_step_2/actor")
    assert cfg.crl.method == "seq_ft"
    assert method.train_overrides(0, []) == {}
    assert method.train_overrides(1, [stage]) == {
        "actor.checkpoint_load_path": "/runs/task_0/checkpoints/global_step_2/actor/model.pt",
        "actor.create_tiny_checkpoint": False,
    }
    assert method.eval_overrides(stage, [stage]) == {
        "rollout.checkpoint_path": "/runs/task_0/checkpoints/global_step_2/actor/model.pt"
    }


def test_seq_ft_chains_the_openvla_oft_adapter_through_its_family():
    cfg = compose("cpu_tiny")
    method = build_method(OmegaConf.to_container(cfg, resolve=True))
    stage = StageRecord(0, [0], "/runs/task_0", "/runs/task_0/checkpoints/global_step_2/actor")
    assert method.train_overrides(1, [stage]) == {"actor.model.lora_path": stage.adapter_dir}
    assert method.eval_overrides(stage, [stage]) == {"actor.model.lora_path": stage.adapter_dir}


@pytest.mark.parametrize("method", ["ewc", "slca", "crl_vla"])
def test_a_lora_only_method_on_the_cnn_is_refused_before_ray_starts(method):
    cfg = compose("cpu_simple_cnn", [f"crl={method}"])
    with pytest.raises(ConfigError, match=rf"actor.model.model_name=simple_cnn: crl={method} trains LoRA adapters"):
        check_method(cfg)
