"""Every method's parameter dataclass (vlacrl/crl/params.py) matches its YAML and holds runs to it."""

import dataclasses

import pytest
from omegaconf import OmegaConf

from vlacrl.config.compose import compose
from vlacrl.crl.common import MethodConfigError
from vlacrl.crl.params import METHOD_PARAMS, check_method_keys, key_types
from vlacrl.crl.registry import method_names

CONFIGS = ["cpu_tiny", "cpu_probe", "crl_experiment/libero_spatial_grpo_openvlaoft_spatial"]


def crl_section(config: str, method: str) -> dict:
    return OmegaConf.to_container(compose(config, [f"crl={method}"]), resolve=True)["crl"]


def test_every_registered_method_has_a_dataclass():
    assert sorted(METHOD_PARAMS) == method_names()


@pytest.mark.parametrize("method", sorted(METHOD_PARAMS))
def test_dataclass_and_yaml_name_the_same_keys_with_fitting_defaults(method):
    """The YAML is the defaults, the dataclass the schema: same keys; every default passes the type check."""
    fields = {f.name for f in dataclasses.fields(METHOD_PARAMS[method])}
    for config in CONFIGS:
        section = crl_section(config, method)
        assert set(section) == fields, (config, sorted(set(section) ^ fields))
        check_method_keys(method, section)


@pytest.mark.parametrize("method", sorted(METHOD_PARAMS))
def test_an_unknown_key_and_a_wrong_type_are_refused(method):
    section = crl_section("cpu_tiny", method)
    with pytest.raises(MethodConfigError, match=f"crl={method} does not read crl.tasks_x"):
        check_method_keys(method, {**section, "tasks_x": 1})
    key, kind = next((k, t) for k, t in key_types(METHOD_PARAMS[method]).items() if t is bool)
    with pytest.raises(MethodConfigError, match=f"crl.{key} must be true or false, got 'yes'"):
        check_method_keys(method, {**section, key: "yes"})
