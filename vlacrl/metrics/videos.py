"""Episode videos (the env workers' mp4 files) as animated GIFs for TensorBoard and files for WandB.

TensorBoard shows an animated GIF stored as an image summary (what ``SummaryWriter.add_video`` does, but
without its moviepy dependency): :func:`gif_summary` reads the mp4, keeps at most ``max_frames`` evenly
spaced frames, downsizes them to ``max_width`` pixels and encodes the GIF with Pillow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def read_frames(path: str | Path, max_frames: int = 48) -> np.ndarray:
    """Frames of an mp4 as [T, H, W, 3] uint8, T <= ``max_frames`` evenly spaced over the video."""
    import imageio.v2 as imageio

    frames = np.asarray(imageio.mimread(str(path), memtest=False))
    if len(frames) > max_frames:
        frames = frames[np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    return frames


def gif_bytes(frames: np.ndarray, fps: float = 8.0, max_width: int = 320) -> tuple[bytes, int, int]:
    """[T, H, W, 3] uint8 → (looping GIF bytes, height, width) after downsizing to ``max_width``."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    width, height = images[0].size
    if width > max_width:
        height, width = round(height * max_width / width), max_width
        images = [im.resize((width, height)) for im in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return buffer.getvalue(), height, width


def gif_summary(tag: str, path: str | Path, max_frames: int = 48):
    """A TensorBoard ``Summary`` holding the video at ``path`` as an animated GIF image."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    data, height, width = gif_bytes(read_frames(path, max_frames))
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=data)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def new_videos(root: str | Path, since: float) -> list[Path]:
    """mp4 files under ``root`` written at or after ``since`` (a ``time.time()``), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*.mp4") if not p.name.endswith(".tmp.mp4") and p.stat().st_mtime >= since]
    return sorted(found, key=lambda p: (p.stat().st_mtime, str(p)))
