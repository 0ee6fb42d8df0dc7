"""Every row of the faithfulness table (docs/reproducing.md) holds for vlacrl's composed configs."""

from typing import Any

import pytest
from faithfulness_table import ROWS, documented_table, markdown_table
from omegaconf import OmegaConf

from vlacrl.config.compose import compose


def matches(actual: Any, expected: Any) -> bool:
    """Equal; a path matches a value it ends with (configs hold absolute paths, the reference $REPO_PATH ones)."""
    if isinstance(expected, str) and isinstance(actual, str) and "/" in expected:
        return actual.rstrip("/").endswith(expected.rstrip("/"))
    return actual == expected


@pytest.mark.parametrize("row", ROWS, ids=[r.setting for r in ROWS])
def test_the_row_holds(row):
    cfg = compose(f"crl_experiment/{row.config}", list(row.overrides))
    actual = OmegaConf.select(cfg, row.key)
    actual = OmegaConf.to_container(actual, resolve=True) if OmegaConf.is_config(actual) else actual
    assert matches(actual, row.value), (row.key, actual)
    if not row.change:  # "same" must be the same
        assert matches(row.value, row.reference), (row.value, row.reference)


def test_no_change_without_a_reason_and_the_docs_table_is_current():
    assert all(r.change == "" or len(r.change.split()) >= 3 for r in ROWS)
    assert documented_table() == markdown_table()  # python tests/config/faithfulness_table.py --write
