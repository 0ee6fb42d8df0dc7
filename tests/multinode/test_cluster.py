"""Training on a real two-node Ray cluster (tests/multinode/conftest.py): workers placed per node by
``cluster.node_resources``, a log directory the actor node cannot see, a node lost mid-run and the resume after it.

Runs: cpu_probe on the probe SFT base, probe task 1 (about 40 % success, so GRPO trains on a real gradient),
1 actor and 1 rollout worker on the head ("trainer"), 2 env workers on the second node ("sim"), 3 global steps,
a checkpoint after every step. ``bash scripts/test.sh -m multinode`` (docs/reproducing.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from isolated_node import IsolatedNode
from probe_runs import probe_overrides, run_cli
from safetensors.torch import load_file

pytestmark = [pytest.mark.multinode, pytest.mark.ray]

STEPS = 3
PLACEMENT = ["~cluster.component_placement",
             "+cluster.component_placement={actor:'cpu:1',rollout:'cpu:1',env:'cpu:2'}"]  # fmt: skip
SPLIT = "cluster.node_resources={actor:trainer,rollout:trainer,env:sim}"


def overrides(cluster, probe_base, log_path: Path, *extra: str) -> list[str]:
    return probe_overrides(probe_base, log_path, f"cluster.address={cluster.address}", *PLACEMENT, SPLIT,
                           "env.fixed_task_ids=[1]", f"runner.max_epochs={STEPS}", "runner.save_interval=1",
                           "env.train.video_cfg.save_video=False", *extra)  # fmt: skip


def adapter(run: Path) -> dict:
    return load_file(str(run / "checkpoints" / f"global_step_{STEPS}" / "actor" / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(cluster, probe_base, tmp_path_factory) -> Path:
    """An uninterrupted 3-step run whose workers span both nodes."""
    log_path = tmp_path_factory.mktemp("multinode") / "uninterrupted"
    run_cli("vlacrl.cli.train", overrides(cluster, probe_base, log_path))
    return log_path


def test_workers_span_both_nodes_as_placed(cluster, uninterrupted):
    placement = json.loads((uninterrupted / "placement.json").read_text())
    head, sim = cluster.head_node.node_id, cluster.sim_node.node_id
    assert placement[head]["workers"] == {"actor": [0], "rollout": [0]}, placement
    assert placement[sim]["workers"] == {"env": [0, 1]}, placement
    assert (uninterrupted / "checkpoints" / f"global_step_{STEPS}" / "COMPLETE").exists()


def test_log_path_the_actor_node_cannot_see_is_one_error(cluster, probe_base, tmp_path):
    hidden = tmp_path / "not_shared"
    node = IsolatedNode(cluster.address, hidden, "isolated")
    try:
        node.wait_joined(cluster.address, "isolated")
        cmd = [sys.executable, "-m", "vlacrl.cli.train", "--config-name", "cpu_probe",
               *overrides(cluster, probe_base, hidden / "run"),
               "cluster.node_resources={actor:isolated,env:sim}"]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    finally:
        node.stop()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    print("\n".join(errors))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-4000:]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-4000:]
    assert f"runner.logger.log_path {hidden / 'run'} is not visible from actor rank(s) [0]" in errors[0], errors
    assert "shared by the driver's node and every actor node" in errors[0]


def test_lost_node_is_one_line_and_resume_reaches_the_same_state(cluster, probe_base, uninterrupted, tmp_path):
    log_path = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "vlacrl.cli.train", "--config-name", "cpu_probe",
           *overrides(cluster, probe_base, log_path)]  # fmt: skip
    first_checkpoint = log_path / "checkpoints" / "global_step_1" / "COMPLETE"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not first_checkpoint.exists():
        assert proc.poll() is None, proc.communicate()[1][-4000:]
        assert time.time() < deadline, "the run never wrote its first checkpoint"
        time.sleep(0.2)
    lost_node = cluster.sim_node.node_id
    cluster.remove_node(cluster.sim_node, allow_graceful=False)  # SIGKILL: raylet, object store, env workers
    _, stderr = proc.communicate(timeout=300)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    print("\n".join(errors))
    assert proc.returncode == 1, stderr[-4000:]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-4000:]
    assert f"Ray node {lost_node[:12]}" in errors[0] and "was lost; it ran env ranks 0-1" in errors[0], errors
    assert "rerun with runner.resume=auto to continue from the checkpoint" in errors[0], errors

    cluster.sim_node = cluster.add_sim_node()  # the node is back (a new raylet with the same resources)
    resumed = run_cli("vlacrl.cli.train", overrides(cluster, probe_base, log_path))
    assert "resumed from" in resumed.stdout + resumed.stderr
    first, second = adapter(uninterrupted), adapter(log_path)
    assert first.keys() == second.keys()
    assert all(first[k].equal(second[k]) for k in first), "the resumed run ended in another state"
