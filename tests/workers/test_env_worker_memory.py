"""Resident-memory readings reported by the env worker (``vlacrl.metrics.memory``), on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from vlacrl.metrics import memory


def test_rss_is_positive_and_grows_by_a_touched_200_mb_array():
    before = memory.rss_mb()
    assert before > 10
    block = np.ones(200 * 2**20, dtype=np.uint8)  # ones: every page is written, so resident
    after = memory.rss_mb()
    assert after - before > 180
    del block


def test_children_rss_counts_a_live_child_and_nothing_for_a_gone_one():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while memory.children_rss_mb([child.pid]) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert memory.children_rss_mb([child.pid]) > 1
        assert child.pid in memory.child_pids()
        assert child.pid in memory._proc_child_pids(os.getpid())  # the fallback without psutil
        assert memory.children_rss_mb() >= memory.children_rss_mb([child.pid])
    finally:
        child.kill()
        child.wait()
    assert memory.children_rss_mb([child.pid]) == 0.0
