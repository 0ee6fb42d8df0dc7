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
    assert "actor rank 0" not in table and "busy share" not in table


def test_actor_split_and_busy_shares_per_worker():
    """Two env workers (4.5 s busy each of a 10 s step), one rollout worker (1.2 s), actor rank 0: forward 1.0,
    backward 1.5, optimizer 0.25 of its 3 s."""
    totals: dict[str, float] = {}
    accumulate(totals, {"time/step": 10.0, "time/rollout": 6.0, "time/actor_training": 3.0, "time/env_step": 9.0,
                        "time/rollout_inference": 1.2, "time/actor_forward": 1.0, "time/actor_backward": 1.5,
                        "time/actor_optimizer": 0.25})  # fmt: skip
    table = phase_table(totals, steps=1, workers={"env": 2, "rollout": 1, "actor": 2})
    assert ("actor rank 0: forward 1.0 s, backward 1.5 s, optimizer 0.2 s; the rest of actor_training 0.2 s"
            in table)  # fmt: skip
    assert "busy share of the wall time per worker: env 45%, rollout 12%, actor 28% (the rest is waiting)" in table
