"""Episode videos reach TensorBoard as animated GIFs (no moviepy needed) and are found by time."""

from __future__ import annotations

import io
import time

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from vlacrl.metrics.loggers import MetricLogger
from vlacrl.metrics.videos import gif_bytes, new_videos, read_frames


def write_mp4(path, frames=30, size=(64, 96)):
    h, w = size
    video = np.zeros((frames, h, w, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, :, : (t + 1) * w // frames, 0] = 255  # a red bar growing to the right
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, list(video), fps=10, macro_block_size=1)
    return path


def test_gif_keeps_at_most_max_frames_and_downsizes(tmp_path):
    frames = read_frames(write_mp4(tmp_path / "a.mp4", frames=30), max_frames=12)
    assert frames.shape == (12, 64, 96, 3)
    data, height, width = gif_bytes(frames, max_width=48)
    gif = Image.open(io.BytesIO(data))
    assert data[:6] == b"GIF89a" and (width, height) == (48, 32) and gif.n_frames == 12
    gif.seek(11)
    last = np.asarray(gif.convert("RGB"))
    assert last[:, -4:, 0].mean() > 200  # the bar reached the right edge in the last frame


def test_tensorboard_gets_the_video_as_an_image_summary(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = write_mp4(tmp_path / "video" / "eval_0_0.mp4")
    log = MetricLogger(["console", "tensorboard"], tmp_path / "run")
    log.log_video("eval/video/eval_0_0", path, step=3)
    log.log_video("eval/video/missing", tmp_path / "nope.mp4", step=3)  # skipped with a warning
    log.close()
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    assert acc.Tags()["images"] == ["eval/video/eval_0_0"]
    (event,) = acc.Images("eval/video/eval_0_0")
    assert event.step == 3 and event.encoded_image_string[:6] == b"GIF89a"


def test_new_videos_only_lists_files_written_since(tmp_path):
    old = write_mp4(tmp_path / "v" / "old.mp4", frames=2)
    since = time.time() + 1
    new = write_mp4(tmp_path / "v" / "rank_0" / "new.mp4", frames=2)
    import os

    os.utime(old, (since - 10, since - 10))
    os.utime(new, (since + 1, since + 1))
    (tmp_path / "v" / "x.tmp.mp4").write_bytes(b"")
    assert new_videos(tmp_path / "v", since) == [new]
    assert new_videos(tmp_path / "missing", since) == []
