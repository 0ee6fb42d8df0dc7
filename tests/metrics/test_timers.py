"""Busy intervals and the coordination overhead of a global step (vlacrl.metrics.timers)."""

import time

import pytest

from vlacrl.metrics.timers import BusyLog, accumulate, coordination_overhead, covered_seconds, phase_table


def test_covered_seconds_is_the_union_clipped_to_the_window():
    # env 0-4 and 3-6 overlap (6 s), inference 7-8, actor 9.5-12 clipped to the window's end at 11
    intervals = [(3.0, 6.0), (0.0, 4.0), (7.0, 8.0), (9.5, 12.0), (20.0, 21.0)]
    assert covered_seconds(intervals, 0.0, 11.0) == pytest.approx(6.0 + 1.0 + 1.5)
    assert covered_seconds(intervals, 5.0, 7.5) == pytest.approx(1.0 + 0.5)
    assert covered_seconds([], 0.0, 10.0) == 0.0
    assert covered_seconds([(1.0, 2.0), (1.2, 1.5)], 0.0, 10.0) == pytest.approx(1.0)  # nested


def test_coordination_overhead_is_the_uncovered_part_of_the_step():
    out = coordination_overhead([(0.0, 4.0), (3.0, 6.0), (7.0, 9.0)], 0.0, 10.0)
    assert out["time/coordination_overhead"] == pytest.approx(2.0)  # 6-7 and 9-10
    assert out["time_share/coordination_overhead"] == pytest.approx(0.2)


def test_busy_log_records_wall_clock_intervals_and_pops_them():
    log = BusyLog()
    before = time.time()
    with log.busy():
        time.sleep(0.01)
    intervals = log.pop()
    assert len(intervals) == 1 and before <= intervals[0][0] < intervals[0][1] <= time.time()
    assert intervals[0][1] - intervals[0][0] >= 0.01 and log.pop() == []


def test_phase_table_reports_the_overhead_share_without_checkpoints():
    totals: dict[str, float] = {}
    accumulate(totals, {"time/step": 10.0, "time/checkpoint": 2.0, "time/rollout": 6.0,
                        "time/coordination_overhead": 0.8, "time_share/coordination_overhead": 0.1})  # fmt: skip
    table = phase_table(totals, steps=1)
    assert "coordination overhead (no worker stepping envs, inferring or training): 0.8 s, 10% of the steps" in table
    assert "time_share" not in str(totals)
