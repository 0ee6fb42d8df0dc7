"""Golden values of the continual-learning metrics on hand-made matrices (every number computed by hand).

The main example: 5 evaluated tasks, 3 trained in sequence (task 0, then 1, then 2), 2 held out (3, 4):

              t0   t1   t2  | t3   t4      (held-out)
    base     0.2  0.3  0.4  | 0.5  0.1
    stage_0  0.8  0.4  0.5  | 0.6  0.2     trains t0
    stage_1  0.9  0.9  0.7  | 0.5  0.3     trains t1
    stage_2  0.7  0.8  1.0  | 0.4  0.4     trains t2   (K = T = 3)
"""

import json
import math

import numpy as np
import pytest

from vlacrl.metrics.crl_metrics import (
    METRICS,
    MetricsError,
    SeedMatrix,
    compute_metrics,
    crl_matrix,
    evaluate_run,
    format_stat,
    load_run,
    matrix_table,
    mean_matrix,
    mean_se,
    notes,
    single_task_reference,
    summarize,
)
from vlacrl.runners.continual import SuccessMatrix

GOLDEN = np.array(
    [
        [0.2, 0.3, 0.4, 0.5, 0.1],
        [0.8, 0.4, 0.5, 0.6, 0.2],
        [0.9, 0.9, 0.7, 0.5, 0.3],
        [0.7, 0.8, 1.0, 0.4, 0.4],
    ]
)
LABELS = ["base", "stage_0", "stage_1", "stage_2"]
TRAINED = [[], [0], [1], [2]]


def write_run(root, seed, success, *, tasks=(0, 1, 2, 3, 4), labels=LABELS, trained=TRAINED):
    """Write one seed's matrix exactly as the continual runner does (SuccessMatrix.add + write)."""
    root.mkdir(parents=True, exist_ok=True)
    matrix = SuccessMatrix(list(tasks))
    for label, stage_tasks, row in zip(labels, trained, success):
        metrics = {f"eval/env_info/task_{t}_success": float(v) for t, v in zip(tasks, row) if v is not None}
        matrix.add(label, list(stage_tasks), metrics)
    matrix.write(root, f"success_matrix_seed{seed}" if seed is not None else "success_matrix")
    return root


def golden(**kwargs):
    return crl_matrix(GOLDEN, stage_of=[0, 1, 2], has_base=True, **kwargs)


def test_golden_sequence_every_metric():
    out = compute_metrics(golden(single_ref=[0.7, 0.8, 0.9]))
    assert list(out) == list(METRICS)
    # AVG = FAR = (S_3,0 + S_3,1 + S_3,2) / 3 = (0.7 + 0.8 + 1.0) / 3 = 2.5 / 3
    assert out["AVG"] == pytest.approx(2.5 / 3) and out["FAR"] == pytest.approx(2.5 / 3)
    # ΔAVG = AVG - base mean on trained = 2.5/3 - (0.2 + 0.3 + 0.4)/3 = 1.6 / 3
    assert out["dAVG"] == pytest.approx(1.6 / 3)
    # NBT = ((S_1,0 - S_3,0) + (S_2,1 - S_3,1)) / 2 = ((0.8 - 0.7) + (0.9 - 0.8)) / 2 = 0.1 ; BWT = -NBT
    assert out["NBT"] == pytest.approx(0.1) and out["BWT"] == pytest.approx(-0.1)
    # F = ((max(0.8, 0.9, 0.7) - 0.7) + (max(0.9, 0.8) - 0.8)) / 2 = (0.2 + 0.1) / 2 = 0.15
    assert out["F"] == pytest.approx(0.15)
    # FWT = mean(diag - ref) = ((0.8 - 0.7) + (0.9 - 0.8) + (1.0 - 0.9)) / 3 = 0.1
    assert out["FWT"] == pytest.approx(0.1)
    # ZS = (0.4 + 0.4) / 2 = 0.4 ; ΔZS = 0.4 - (0.5 + 0.1) / 2 = 0.1
    assert out["ZS"] == pytest.approx(0.4) and out["dZS"] == pytest.approx(0.1)
    # FT = ((S_1,1 - b_1) + (S_2,2 - b_2)) / 2 = ((0.4 - 0.3) + (0.7 - 0.4)) / 2 = 0.2
    assert out["FT"] == pytest.approx(0.2)


def test_fwt_without_reference_is_nan_with_a_note():
    m = golden()
    assert math.isnan(compute_metrics(m)["FWT"])
    assert any("FWT n/a" in n and "--single-task-ref" in n for n in notes(m))
    partial = golden(single_ref=[0.7, float("nan"), 0.9])  # the reference lacks task 1
    assert math.isnan(compute_metrics(partial)["FWT"])
    assert any("lacks task(s) [1]" in n for n in notes(partial))


def test_without_base_row_the_base_relative_metrics_are_nan():
    out = compute_metrics(crl_matrix(GOLDEN[1:], stage_of=[0, 1, 2], has_base=False))
    assert all(math.isnan(out[k]) for k in ("dAVG", "dZS", "FT"))
    assert out["AVG"] == pytest.approx(2.5 / 3) and out["NBT"] == pytest.approx(0.1) and out["ZS"] == pytest.approx(0.4)


def test_multitask_single_stage_reads_that_row_as_the_diagonal():
    # base [0.2 0.3 0.4 | 0.5 0.1]; one stage training tasks 0, 1, 2 together: [0.9 0.8 0.7 | 0.6 0.3]
    full = np.array([[0.2, 0.3, 0.4, 0.5, 0.1], [0.9, 0.8, 0.7, 0.6, 0.3]])
    m = crl_matrix(full, stage_of=[0, 0, 0], single_ref=[0.8, 0.8, 0.8])
    out = compute_metrics(m)
    assert out["AVG"] == pytest.approx(0.8)  # (0.9 + 0.8 + 0.7) / 3
    assert out["dAVG"] == pytest.approx(0.5)  # 0.8 - 0.3
    assert out["FWT"] == pytest.approx(0.0)  # ((0.9-0.8) + (0.8-0.8) + (0.7-0.8)) / 3
    assert out["ZS"] == pytest.approx(0.45) and out["dZS"] == pytest.approx(0.15)  # (0.6+0.3)/2 - (0.5+0.1)/2
    assert all(math.isnan(out[k]) for k in ("NBT", "BWT", "F", "FT"))  # no earlier stage: nothing to forget
    assert any("T=1 or multitask" in n for n in notes(m))


def test_single_task_sequence_t1():
    # base [0.2 | 0.5]; stage_0 trains task 0: [0.9 | 0.6]; reference S^single_0 = 0.85
    m = crl_matrix(np.array([[0.2, 0.5], [0.9, 0.6]]), stage_of=[0], single_ref=[0.85])
    out = compute_metrics(m)
    assert out["AVG"] == pytest.approx(0.9) and out["dAVG"] == pytest.approx(0.7)
    assert out["ZS"] == pytest.approx(0.6) and out["dZS"] == pytest.approx(0.1)
    assert out["FWT"] == pytest.approx(0.05)
    assert all(math.isnan(out[k]) for k in ("NBT", "BWT", "F", "FT"))


def test_grouped_stages_use_the_stage_that_trained_each_task():
    # stage_0 trains {0, 1}, stage_1 trains {2}; columns t0 t1 t2 | t3
    full = np.array([[0.1, 0.1, 0.1, 0.1], [0.6, 0.8, 0.3, 0.2], [0.5, 0.4, 0.9, 0.2]])
    out = compute_metrics(crl_matrix(full, stage_of=[0, 0, 1]))
    assert out["NBT"] == pytest.approx(((0.6 - 0.5) + (0.8 - 0.4)) / 2)  # O = {t0, t1}
    assert out["FT"] == pytest.approx(0.3 - 0.1)  # only t2 has an earlier stage: S_1,2 - b_2
    assert out["F"] == pytest.approx(0.25)


def test_mean_and_standard_error():
    three = mean_se([0.6, 0.8, 0.7])  # mean 0.7; std(ddof=1) = sqrt((0.01 + 0.01 + 0) / 2) = 0.1
    assert three.mean == pytest.approx(0.7) and three.se == pytest.approx(0.1 / math.sqrt(3)) and three.n == 3
    two = mean_se([0.5, 0.9])  # std(ddof=1) = sqrt(0.04 + 0.04) ; se = that / sqrt(2) = 0.2
    assert two.mean == pytest.approx(0.7) and two.se == pytest.approx(0.2)
    one = mean_se([0.5, float("nan")])  # only one defined value: s.e. NaN
    assert one.mean == 0.5 and math.isnan(one.se) and one.n == 1
    assert math.isnan(mean_se([]).mean)
    assert format_stat(two, 2) == "70.0 ± 20.0" and format_stat(one, 2) == "50.0 ± n/a (n=1)"


def test_summarize_two_seeds_by_hand():
    second = GOLDEN.copy()
    second[3] = [0.5, 0.6, 0.8, 0.2, 0.2]  # AVG = 1.9/3 ; ZS = 0.2
    per_seed = [compute_metrics(golden()), compute_metrics(crl_matrix(second, stage_of=[0, 1, 2]))]
    stats = summarize({"seq_ft": per_seed})["seq_ft"]
    # AVG: (2.5/3 + 1.9/3) / 2 = 2.2/3 ; s.e. of two values = |a - b| / 2 = 0.6/3/2 = 0.1
    assert stats["AVG"].mean == pytest.approx(2.2 / 3) and stats["AVG"].se == pytest.approx(0.1)
    # ZS: (0.4 + 0.2) / 2 = 0.3, s.e. 0.1 ; FWT undefined in both seeds
    assert stats["ZS"].mean == pytest.approx(0.3) and stats["ZS"].se == pytest.approx(0.1)
    assert stats["FWT"].n == 0 and math.isnan(stats["FWT"].mean)


# ----------------------------------------------------------------------------------------------- the loader
def test_loader_reads_the_runner_files_and_reorders_columns(tmp_path):
    # the same golden numbers, but the file lists tasks as [3, 2, 0, 4, 1]
    order = [3, 2, 0, 4, 1]
    shuffled = GOLDEN[:, order]
    write_run(tmp_path, 7, shuffled, tasks=order)
    write_run(tmp_path, 8, shuffled, tasks=order)
    seeds = load_run(tmp_path)
    assert [s.seed for s in seeds] == [7, 8] and seeds[0].tasks == order
    assert seeds[0].trained_order == [0, 1, 2] and seeds[0].held_out == [3, 4]
    m = seeds[0].to_crl({0: 0.7, 1: 0.8, 2: 0.9})
    assert m.columns == (0, 1, 2, 3, 4) and np.allclose(m.stages, GOLDEN[1:]) and np.allclose(m.base, GOLDEN[0])
    run = evaluate_run("seq_ft", seeds, {0: 0.7, 1: 0.8, 2: 0.9})
    assert run.per_seed[0]["FWT"] == pytest.approx(0.1) and run.per_seed[1]["NBT"] == pytest.approx(0.1)
    assert run.notes == []


def test_loader_plain_file_and_errors(tmp_path):
    write_run(tmp_path / "plain", None, [[0.5, 0.25]], tasks=[0, 1], labels=["stage_0"], trained=[[0]])
    (seed,) = load_run(tmp_path / "plain")
    assert seed.seed is None and compute_metrics(seed.to_crl())["AVG"] == 0.5
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricsError, match="no success_matrix_seed"):
        load_run(tmp_path / "empty")
    with pytest.raises(MetricsError, match="not a directory"):
        load_run(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "success_matrix_seed1.json").write_text('{"tasks": [0]}')
    with pytest.raises(MetricsError, match="not a success matrix"):
        load_run(tmp_path / "bad")


@pytest.mark.parametrize(
    ("rows", "labels", "tasks", "message"),
    [
        ([[1.5, 0.5]], ["stage_0"], [0, 1], r"success 1\.5 of row 'stage_0', task 0 is not a fraction in \[0, 1\]"),
        ([[0.5, -0.5]], ["stage_0"], [0, 1], r"success -0\.5 of row 'stage_0', task 1 is not a fraction"),
        ([[0.5, float("nan")]], ["stage_0"], [0, 1], r"success nan of row 'stage_0', task 1"),
        ([[0.5, 0.5], [0.5, 0.5]], ["stage_0", "stage_0"], [0, 1], r"row label\(s\) \['stage_0'\] appear more"),
        ([[0.5, 0.5]], ["stage_0"], [0, 0], r"task\(s\) \[0\] appear more than once"),
        ([[0.5, 0.5], [0.5]], ["stage_0", "stage_1"], [0, 1], "not a success matrix|one success value per task"),
    ],
)
def test_impossible_matrices_are_refused(tmp_path, rows, labels, tasks, message):
    data = {"tasks": tasks, "rows": [{"label": lb, "trained_tasks": [0], "success": r} for lb, r in zip(labels, rows)]}
    (tmp_path / "success_matrix_seed1.json").write_text(json.dumps(data))
    with pytest.raises(MetricsError, match=message):
        load_run(tmp_path, allow_missing=True)


def test_missing_cells_fail_unless_allowed(tmp_path):
    rows = [[0.2, 0.3, 0.4, 0.5, 0.1], [0.8, None, 0.5, 0.6, 0.2], [0.9, 0.9, 0.7, 0.5, 0.3], [0.7, 0.8, 1.0, 0.4, 0.4]]
    write_run(tmp_path, 1, rows)  # stage_0 has no value for task 1 → -1.0
    with pytest.raises(MetricsError, match=r"1 cell\(s\) not evaluated \(-1\): stage_0/task_1"):
        load_run(tmp_path)
    (seed,) = load_run(tmp_path, allow_missing=True)
    out = compute_metrics(seed.to_crl())
    assert math.isnan(out["FT"])  # FT reads S_1,1 (the missing cell)
    assert out["NBT"] == pytest.approx(0.1) and out["AVG"] == pytest.approx(2.5 / 3)  # these do not


def test_mismatched_task_lists_between_seeds(tmp_path):
    write_run(tmp_path, 1, GOLDEN)
    write_run(tmp_path, 2, GOLDEN[:, :4], tasks=[0, 1, 2, 3])
    with pytest.raises(MetricsError, match="mismatched task lists"):
        load_run(tmp_path)


def test_single_task_reference_from_dirs_and_json(tmp_path):
    # two single-task runs (task 0 and task 1) and a JSON mapping for task 2
    write_run(tmp_path / "single_0", 1, [[0.6, 0.1]], tasks=[0, 1], labels=["stage_0"], trained=[[0]])
    write_run(tmp_path / "single_0", 2, [[0.8, 0.1]], tasks=[0, 1], labels=["stage_0"], trained=[[0]])
    write_run(
        tmp_path / "single_1", 1, [[0.1, 0.2], [0.3, 0.5]], tasks=[0, 1], labels=["base", "stage_0"], trained=[[], [1]]
    )
    (tmp_path / "ref.json").write_text('{"2": 0.9, "1": 0.7}')
    ref = single_task_reference([tmp_path / "single_0", tmp_path / "single_1", tmp_path / "ref.json"])
    assert ref == pytest.approx({0: 0.7, 1: 0.6, 2: 0.9})  # task 1: mean of 0.5 (run) and 0.7 (json)
    (tmp_path / "pct.json").write_text('{"0": 70}')
    with pytest.raises(MetricsError, match="fractions"):
        single_task_reference([tmp_path / "pct.json"])


def test_mean_matrix_and_table():
    row = {"label": "stage_0", "trained_tasks": [1]}
    a = SeedMatrix.from_dict({"tasks": [0, 1], "rows": [{**row, "success": [0.2, -1]}]})
    b = SeedMatrix.from_dict({"tasks": [1, 0], "rows": [{**row, "success": [0.6, 0.4]}]})
    mean = mean_matrix([a, b])
    assert np.allclose(mean.success, [[0.3, 0.6]])  # task 0: (0.2+0.4)/2; task 1: only b has it
    header, rows = matrix_table(a)
    assert header == ["after", "task_1", "task_0*"] and rows == [["stage_0", "-", "20.0"]]
