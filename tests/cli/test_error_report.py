"""run_guarded turns known failures into one line and an exit code, never a traceback."""

from __future__ import annotations

import pytest

from vlacrl.cli.common import run_guarded
from vlacrl.distributed.cluster import ClusterError
from vlacrl.models.errors import CNNCheckpointError


@pytest.mark.parametrize(
    "exc,code",
    [
        (ClusterError("waited 300s for resources [{'GPU': 1.0}] but the cluster has {}"), 2),
        (CNNCheckpointError("Simple CNN checkpoint /x.pt not found"), 2),
    ],
)
def test_cluster_and_cnn_errors_are_one_line(capsys, exc, code):
    def fail(_cfg):
        raise exc

    assert run_guarded(fail, None) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {exc}"]
