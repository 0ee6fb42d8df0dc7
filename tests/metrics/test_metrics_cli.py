"""``vlacrl-metrics``: 2 methods x 2 seeds side by side, the written files, and one-line errors."""

import csv
import json

import numpy as np
import pytest

from vlacrl.cli.metrics import default_label, main
from vlacrl.runners.continual import SuccessMatrix

TASKS = [0, 1, 2, 3, 4]
LABELS = ["base", "stage_0", "stage_1", "stage_2"]
TRAINED = [[], [0], [1], [2]]
GOLDEN = np.array(
    [
        [0.2, 0.3, 0.4, 0.5, 0.1],
        [0.8, 0.4, 0.5, 0.6, 0.2],
        [0.9, 0.9, 0.7, 0.5, 0.3],
        [0.7, 0.8, 1.0, 0.4, 0.4],
    ]
)


def write_run(root, seed, success, *, labels=LABELS, trained=TRAINED, tasks=TASKS):
    root.mkdir(parents=True, exist_ok=True)
    matrix = SuccessMatrix(list(tasks))
    for label, stage_tasks, row in zip(labels, trained, success):
        matrix.add(label, list(stage_tasks), {f"eval/env_info/task_{t}_success": float(v) for t, v in zip(tasks, row)})
    matrix.write(root, f"success_matrix_seed{seed}")


@pytest.fixture
def two_methods(tmp_path):
    """seq_ft: the golden matrix (seed 1) and the same with a final row of AVG 1.9/3, ZS 0.2 (seed 2).

    multitask: base + one stage training 0, 1, 2 with [0.9 0.8 0.7 | 0.6 0.3] in both seeds.
    """
    second = GOLDEN.copy()
    second[3] = [0.5, 0.6, 0.8, 0.2, 0.2]
    write_run(tmp_path / "seq_ft", 1, GOLDEN)
    write_run(tmp_path / "seq_ft", 2, second)
    multitask = [GOLDEN[0], [0.9, 0.8, 0.7, 0.6, 0.3]]
    for seed in (1, 2):
        write_run(tmp_path / "multitask", seed, multitask, labels=["base", "stage_0"], trained=[[], [0, 1, 2]])
    return tmp_path


def test_two_methods_two_seeds(two_methods, capsys):
    out = two_methods / "report"
    assert main([str(two_methods / "seq_ft"), str(two_methods / "multitask"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    md = (out / "metrics.md").read_text()
    assert md in printed
    lines = md.splitlines()
    header = "| method | seeds | AVG ↑ | ΔAVG ↑ | NBT ↓ | FWT ↑ | ZS ↑ | ΔZS ↑ | FAR ↑ | BWT ↑ | FT ↑ | F ↓ |"
    assert lines[0] == header
    # seq_ft AVG (2.5/3 + 1.9/3)/2 = 73.3 %, s.e. 10.0 ; ΔAVG: base trained mean 0.3 in both → 43.3 ± 10.0
    # NBT seed1 0.1, seed2 ((0.8-0.5)+(0.9-0.6))/2 = 0.3 → 20.0 ± 10.0 ; ZS (0.4+0.2)/2 → 30.0 ± 10.0
    seq = lines[2].split(" | ")
    assert seq[0] == "| seq_ft" and seq[1] == "2"
    assert seq[2:6] == ["73.3 ± 10.0", "43.3 ± 10.0", "20.0 ± 10.0", "n/a"] and seq[6] == "30.0 ± 10.0"
    # multitask: identical seeds → s.e. 0; AVG 80.0, NBT/BWT/F/FT n/a
    multi = lines[3].split(" | ")
    assert multi[2] == "80.0 ± 0.0" and multi[4] == "n/a" and multi[6] == "45.0 ± 0.0" and multi[-1] == "n/a |"
    assert "- multitask: NBT, BWT, F n/a" in md and "- seq_ft: FWT n/a" in md

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["method"] for r in rows] == ["seq_ft", "multitask"] and rows[0]["seeds"] == "2"
    assert float(rows[0]["AVG_mean"]) == pytest.approx(220 / 3, abs=1e-3)
    assert float(rows[0]["AVG_se"]) == pytest.approx(10)
    assert rows[1]["NBT_mean"] == "" and rows[0]["FWT_mean"] == ""

    per_seed = json.loads((out / "seq_ft_per_seed.json").read_text())
    assert per_seed["unit"] == "fraction" and [s["seed"] for s in per_seed["seeds"]] == [1, 2]
    first = per_seed["seeds"][0]["metrics"]
    assert first["NBT"] == pytest.approx(0.1) and first["FWT"] is None
    assert per_seed["summary"]["NBT"] == {"mean": pytest.approx(0.2), "se": pytest.approx(0.1), "n": 2}
    pngs = {"comparison.png", "heatmap_seq_ft.png", "task_curves_seq_ft.png", "heatmap_multitask.png"}
    assert pngs <= {p.name for p in out.glob("*.png")}


def test_labels_pool_seed_dirs_and_reference_gives_fwt(two_methods, capsys):
    write_run(two_methods / "a_seed1", 1, GOLDEN)
    write_run(two_methods / "a_seed2", 2, GOLDEN)
    ref, ref_2 = two_methods / "ref.json", two_methods / "ref_2.json"  # one flag, several sources
    ref.write_text(json.dumps({"0": 0.7, "1": 0.8}))
    ref_2.write_text(json.dumps({"2": 0.9}))
    assert default_label(two_methods / "a_seed1") == "a"
    dirs = [str(two_methods / "a_seed1"), str(two_methods / "a_seed2")]
    argv = [*dirs, "--single-task-ref", str(ref), str(ref_2), "--format", "csv"]
    assert main(argv) == 0
    out = two_methods / "a_seed1" / "metrics"
    assert (out / "metrics.csv").exists() and not (out / "metrics.md").exists()
    (row,) = list(csv.DictReader(open(out / "metrics.csv")))
    assert row["method"] == "a" and row["seeds"] == "2" and float(row["FWT_mean"]) == pytest.approx(10.0)
    assert "FWT_mean" in capsys.readouterr().out


def test_errors_are_one_line(two_methods, capsys):
    (two_methods / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main([str(two_methods / "empty")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no success_matrix_seed" in err and "\n" not in err

    write_run(two_methods / "other", 1, GOLDEN[:, :4], tasks=[0, 1, 2, 3])
    with pytest.raises(SystemExit):
        main([str(two_methods / "seq_ft"), str(two_methods / "other")])
    assert "mismatched task lists" in capsys.readouterr().err

    holes = GOLDEN.copy()
    holes[2, 1] = -1.0
    write_run(two_methods / "holes", 1, holes)
    with pytest.raises(SystemExit):
        main([str(two_methods / "holes")])
    assert "not evaluated (-1): stage_1/task_1" in capsys.readouterr().err
    assert main([str(two_methods / "holes"), "--allow-missing", "--no-plots"]) == 0

    with pytest.raises(SystemExit):
        main([str(two_methods / "seq_ft"), "--label", "a", "b"])
    assert "one name per RUN_DIR" in capsys.readouterr().err
