"""benchmarks/repeated.py: alternating repeated runs, median and spread, no ratio inside the noise."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from repeated import Measurement, measure_alternating, ratio, report  # noqa: E402


def test_configurations_alternate_and_report_median_and_spread():
    order, values = [], {"a": iter([3.0, 1.0, 2.0]), "b": iter([10.0, 12.0, 11.0])}

    def measure(name):
        def run():
            order.append(name)
            return next(values[name])

        return run

    measured = measure_alternating({"a": measure("a"), "b": measure("b")}, runs=3)
    assert order == ["a", "b", "a", "b", "a", "b"]  # one of each per round: a load change hits both
    a, b = measured["results"]["a"], measured["results"]["b"]
    assert (a.median, a.spread, b.median, b.spread) == (2.0, 2.0, 11.0, 2.0)
    assert ratio(b, a) == {"ratio": 5.5, "why": ""}
    assert report(measured)["results"]["a"]["runs"] == [3.0, 1.0, 2.0] and "load_before" in measured
    with pytest.raises(ValueError, match="at least 3 runs"):
        measure_alternating({"a": measure("a")}, runs=2)


def test_no_ratio_when_the_spread_covers_the_difference():
    noisy, steady = Measurement("x", [1.0, 1.6, 1.1]), Measurement("y", [1.2, 1.3, 1.25])
    verdict = ratio(noisy, steady)
    assert verdict["ratio"] is None and verdict["why"].startswith("within noise")
