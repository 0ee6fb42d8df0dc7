"""The user-facing env commands end to end, as a user runs them (real subprocesses)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.libero


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def test_doctor_reports_osmesa_working_and_every_suite():
    proc = run_cli("vlacrl.cli.doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok  ] render osmesa" in proc.stdout
    for suite in ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"):
        assert f"[ok  ] suite {suite}" in proc.stdout
    assert "summary: ready" in proc.stdout


def test_rollout_writes_statistics_and_a_video(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("vlacrl.cli.rollout", "--out", str(out), "--num-envs", "2", "--chunks", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((out / "episode_stats.json").read_text())
    assert len(stats["episodes"]) == 2
    episode = stats["episodes"][0]
    assert episode["episode_len"] == 16 and episode["task_id"] == 0
    assert {"success_once", "return", "reward", "task_0_success"} <= set(episode)
    assert stats["env_steps"] == 32 and stats["env_steps_per_s"] > 0
    assert (out / "videos" / "rank_0" / "epoch_0.mp4").stat().st_size > 1000


@pytest.mark.parametrize(
    "args,message",
    [(["--suite", "libero_1000"], "unknown LIBERO suite"), (["--tasks", "0,10"], "out of range")],
)
def test_rollout_bad_input_is_one_line_not_a_traceback(tmp_path, args, message):
    proc = run_cli("vlacrl.cli.rollout", "--out", str(tmp_path), *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
