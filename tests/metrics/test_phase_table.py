"""The end-of-run table of where a global step's time went (vlacrl.metrics.timers.phase_table)."""

from vlacrl.metrics.timers import accumulate, phase_table


def test_phase_table_shares_other_and_busy_fractions():
    totals: dict[str, float] = {}
    for _ in range(2):  # two steps of 10 s: 6 s rollout (env busy 4.5, inference 1.2), 3 s training, 0.5 s sync
        accumulate(totals, {"time/step": 10.0, "time/rollout": 6.0, "time/actor_training": 3.0,
                            "time/weight_sync": 0.5, "time/env_step": 4.5, "time/rollout_inference": 1.2,
                            "train/actor/lr": 1e-3})  # fmt: skip
    table = phase_table(totals, steps=2)
    assert table.splitlines()[0] == "where the time went (2 global steps, 20.0 s):"
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:7]}
    assert rows["rollout"] == ["12.0", "60%"] and rows["actor_training"] == ["6.0", "30%"]
    assert rows["weight_sync"] == ["1.0", "5%"] and rows["checkpoint"] == ["0.0", "0%"]
    assert rows["other"] == ["1.0", "5%"]  # 20 − 12 − 6 − 1 − 0
    assert "env workers stepping: 9.0 s, 75% of the rollout phase" in table
    assert "rollout workers inferring: 2.4 s, 20% of the rollout phase" in table
    assert "lr" not in totals and phase_table({}, steps=0) == "no global step was timed"
