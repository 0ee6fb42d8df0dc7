"""Episode videos: a tiled grid of the recorded envs with a success overlay, written as mp4."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SUCCESS_RGB = (40, 200, 70)
FAIL_RGB = (220, 60, 50)


@dataclass
class VideoConfig:
    """Which episodes are recorded and where.

    ``save_frequency`` counts epochs (``flush`` calls): 1 records every epoch, 10 every tenth,
    starting with the first. (The reference never advanced its counter after the first save, so
    it wrote a single video per process; this counter does advance.)
    """

    save_video: bool = False
    save_frequency: int = 1
    env_indices: list[int] | None = None  # None: every env of the worker
    max_envs: int = 16  # cap on tiles per frame
    fps: int = 30
    video_base_dir: str = "videos"
    info_on_video: bool = True


def overlay(frame: np.ndarray, text: str, success: bool, info_on_video: bool = True) -> np.ndarray:
    """Draw a coloured border (green: success so far, red: not yet) and a caption on ``frame``."""
    from PIL import Image, ImageDraw

    out = frame.copy()
    colour = np.array(SUCCESS_RGB if success else FAIL_RGB, dtype=np.uint8)
    width = max(2, frame.shape[0] // 64)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = colour, colour, colour, colour
    if not info_on_video:
        return out
    image = Image.fromarray(out)
    ImageDraw.Draw(image).text((width + 2, width + 1), text, fill=(255, 255, 255))
    return np.asarray(image)


def tile(frames: list[np.ndarray]) -> np.ndarray:
    """Arrange equally sized [H, W, 3] frames in a grid with ``floor(sqrt(n))`` rows."""
    n = len(frames)
    rows = max(1, int(math.sqrt(n)))
    cols = math.ceil(n / rows)
    h, w, c = frames[0].shape
    grid = np.zeros((rows * h, cols * w, c), dtype=frames[0].dtype)
    for k, frame in enumerate(frames):
        r, col = divmod(k, cols)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = frame
    return grid


@dataclass
class VideoRecorder:
    """Collects tiled frames over an epoch and writes ``<dir>/<name>.mp4`` on flush."""

    config: VideoConfig
    num_envs: int
    frames: list[np.ndarray] = field(default_factory=list)
    epochs_seen: int = 0
    written: list[Path] = field(default_factory=list)

    @property
    def recorded_envs(self) -> list[int]:
        envs = self.config.env_indices if self.config.env_indices is not None else range(self.num_envs)
        return [i for i in envs if 0 <= i < self.num_envs][: self.config.max_envs]

    @property
    def active(self) -> bool:
        """Whether the current epoch is being recorded."""
        freq = max(1, int(self.config.save_frequency))
        return self.config.save_video and self.epochs_seen % freq == 0

    def add_chunk(self, env_frames: dict[int, np.ndarray], captions: dict[int, str], success: dict[int, np.ndarray]):
        """Append one chunk: ``env_frames[i]`` is [C, H, W, 3], ``success[i]`` is [C] bool."""
        envs = self.recorded_envs
        steps = env_frames[envs[0]].shape[0]
        for t in range(steps):
            tiles = [
                overlay(env_frames[i][t], captions[i], bool(success[i][t]), self.config.info_on_video) for i in envs
            ]
            self.frames.append(tile(tiles))

    def flush(self, name: str, sub_dir: str | None = None) -> Path | None:
        """Write the collected frames (if this epoch was recorded); always advances the epoch counter."""
        path = None
        if self.active and self.frames:
            import imageio.v2 as imageio

            out_dir = Path(self.config.video_base_dir) / (sub_dir or "")
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{name}.mp4"
            tmp = path.with_suffix(".tmp.mp4")
            imageio.mimwrite(tmp, self.frames, fps=self.config.fps, macro_block_size=1)
            os.replace(tmp, path)
            self.written.append(path)
            logger.info("wrote video %s (%d frames)", path, len(self.frames))
        self.frames = []
        self.epochs_seen += 1
        return path
