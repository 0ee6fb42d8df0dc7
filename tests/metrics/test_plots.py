"""PNG figures of success matrices, the image/table logger methods and the runner's heatmap logging."""

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from vlacrl.metrics import plots
from vlacrl.metrics.crl_metrics import SeedMatrix, Stat
from vlacrl.metrics.loggers import MetricLogger

DATA = {
    "tasks": [0, 1, 2, 3, 4],
    "rows": [
        {"label": "base", "trained_tasks": [], "success": [0.2, 0.3, 0.4, 0.5, 0.1]},
        {"label": "stage_0", "trained_tasks": [0], "success": [0.8, 0.4, 0.5, 0.6, 0.2]},
        {"label": "stage_1", "trained_tasks": [1], "success": [0.9, 0.9, -1.0, 0.5, 0.3]},
        {"label": "stage_2", "trained_tasks": [2], "success": [0.7, 0.8, 1.0, 0.4, 0.4]},
    ],
}


@pytest.fixture
def matrix():
    return SeedMatrix.from_dict(DATA, seed=1)


def assert_real_picture(pixels: np.ndarray, min_colours: int = 8) -> None:
    """Not blank: a good share of non-white pixels and several distinct colours."""
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    non_white = (pixels < 245).any(axis=2).mean()
    assert non_white > 0.05, f"only {non_white:.1%} non-white pixels"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= min_colours


def read_png(path, min_size=(300, 200), max_size=(2500, 1500)) -> np.ndarray:
    assert path.exists() and path.suffix == ".png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert min_size[0] <= width <= max_size[0] and min_size[1] <= height <= max_size[1], image.size
        return np.asarray(image.convert("RGB"))


def test_heatmap_png_and_array(tmp_path, matrix):
    path = plots.plot_success_heatmap(matrix, tmp_path / "sub" / "heatmap.png", "seq_ft seed 1")
    pixels = read_png(path)
    assert_real_picture(pixels, min_colours=20)
    array = plots.heatmap_array(matrix)
    assert array.shape == pixels.shape  # same figure, same dpi
    assert_real_picture(array, min_colours=20)


def test_task_curves_png(tmp_path, matrix):
    assert_real_picture(read_png(plots.plot_task_curves(matrix, tmp_path / "curves.png")))


def test_method_comparison_png(tmp_path):
    summary = {
        "seq_ft": {"AVG": Stat(0.8, 0.01, 3), "NBT": Stat(0.02, 0.01, 3), "FWT": Stat(float("nan"), float("nan"), 0)},
        "ewc": {"AVG": Stat(0.7, 0.02, 3), "NBT": Stat(-0.01, float("nan"), 1), "FWT": Stat(float("nan"), 0.0, 0)},
    }
    path = plots.plot_method_comparison(summary, tmp_path / "cmp.png", metrics=["AVG", "NBT", "FWT"])
    assert_real_picture(read_png(path))


def test_logger_image_and_table_in_tensorboard(tmp_path, matrix):
    log = MetricLogger(["console", "tensorboard"], tmp_path)
    log.log_table("crl/success_matrix", ["after", "task_0"], [["base", "20.0"], ["stage_0", "80.0"]], step=1)
    log.log_image("crl/success_matrix_heatmap", plots.heatmap_array(matrix), step=1)
    log.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    (image,) = acc.Images("crl/success_matrix_heatmap")
    assert image.step == 1 and image.width > 100 and image.height > 100
    (text,) = acc.Tensors("crl/success_matrix/text_summary")
    body = text.tensor_proto.string_val[0].decode()
    assert "| after | task_0 |" in body and "| stage_0 | 80.0 |" in body


def test_logger_image_and_table_with_wandb_disabled(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    log = MetricLogger(["wandb"], tmp_path, wandb_mode="disabled")
    log.log_table("t", ["a"], [[1]], step=0)
    log.log_image("i", np.zeros((8, 8, 3), dtype=np.uint8), step=0)
    log.close()


# --------------------------------------------------------------------------- the runner logs table + heatmap
def fake_runner(tmp_path, metric_logger):
    from vlacrl.crl.base import CRLMethod
    from vlacrl.runners.continual import ContinualRunner

    cfg = OmegaConf.create({
        "env": {"train": {"task_suite_name": "libero_spatial"}, "eval": {"task_suite_name": "libero_spatial"}},
        "crl": {"tasks": [0, 1], "eval_tasks": [0, 1, 2], "eval_base": True, "seed": 3},
        "runner": {"logger": {"log_path": str(tmp_path / "seq")}, "resume": "disable"},
    })  # fmt: skip

    def train_fn(stage_cfg):
        return SimpleNamespace(checkpoint=None, method_record={})

    def eval_fn(eval_cfg, out_dir):
        return {f"eval/env_info/task_{t}_success": 0.1 * (t + 1) for t in (0, 1, 2)}

    return ContinualRunner(cfg, CRLMethod(OmegaConf.to_container(cfg)), train_fn, eval_fn, metric_logger)


def test_runner_logs_matrix_table_and_heatmap(tmp_path):
    log = MetricLogger(["tensorboard"], tmp_path / "seq" / "sequence")
    matrix = fake_runner(tmp_path, log).run()
    log.close()
    assert [r["label"] for r in matrix.rows] == ["base", "stage_0", "stage_1"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = tmp_path / "seq" / "sequence" / "tensorboard"
    acc = EventAccumulator(str(events), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    assert [e.step for e in acc.Images("crl/success_matrix_heatmap")] == [0, 1, 2]
    texts = acc.Tensors("crl/success_matrix/text_summary")
    assert [e.step for e in texts] == [0, 1, 2]
    assert "| stage_1 | 10.0 | 20.0 | 30.0 |" in texts[-1].tensor_proto.string_val[0].decode()


def test_runner_survives_a_plotting_failure(tmp_path, monkeypatch, caplog):
    def broken(*_, **__):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(plots, "heatmap_array", broken)
    log = MetricLogger(["console"], tmp_path / "seq" / "sequence")
    with caplog.at_level(logging.WARNING, logger="vlacrl.runners.continual"):
        matrix = fake_runner(tmp_path, log).run()
    assert len(matrix.rows) == 3
    assert "could not log the success matrix" in caplog.text and "no fonts" in caplog.text
