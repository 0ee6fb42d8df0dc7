"""Drawing the probe world: a top-down view of the x-y plane plus a z gauge on the right edge.

Image layout (``size`` x ``size`` RGB uint8; row 0 is the top, where y = +1):
* background dark grey; the task's target box in its colour (blended) when it constrains x or y;
* distractor squares in other tasks' colours (they do nothing);
* a z gauge: a strip ``GAUGE`` pixels wide on the right edge, the target band in the task's colour for
  z targets, and a white tick at the effector's height;
* the effector: a white disk whose radius grows with z; a closed gripper has a dark core.
All drawing is numpy slicing (a few tens of microseconds per frame).
"""

from __future__ import annotations

import functools

import numpy as np

from vlacrl.envs.probe.tasks import HIGH, LOW, ProbeTask

BACKGROUND = (40, 40, 46)
GAUGE = 10  # pixels
EFFECTOR = (255, 255, 255)
CORE = (30, 30, 30)
DISTRACTOR_PIXELS = 14


def to_pixel(value: float, size: int, flip: bool = False) -> int:
    """A coordinate in [-1, 1] → a pixel index in [0, size); ``flip`` for rows (y up)."""
    unit = (value - LOW) / (HIGH - LOW)
    if flip:
        unit = 1.0 - unit
    return int(round(unit * (size - 1)))


@functools.lru_cache(maxsize=32)
def _disk(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the pixels of a disk of ``radius``."""
    r = np.arange(-radius, radius + 1)
    rows, cols = np.meshgrid(r, r, indexing="ij")
    inside = rows**2 + cols**2 <= radius**2
    return rows[inside], cols[inside]


def _blend(image: np.ndarray, rows: slice, cols: slice, colour, alpha: float) -> None:
    patch = image[rows, cols].astype(np.float32)
    image[rows, cols] = (patch * (1 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


def _draw_disk(image: np.ndarray, row: int, col: int, radius: int, colour) -> None:
    dr, dc = _disk(radius)
    rr, cc = row + dr, col + dc
    keep = (rr >= 0) & (rr < image.shape[0]) & (cc >= 0) & (cc < image.shape[1] - GAUGE)
    image[rr[keep], cc[keep]] = colour


def draw_scene(
    size: int,
    task: ProbeTask,
    *,
    position: np.ndarray,
    gripper_open: bool,
    distractors: np.ndarray,
    distractor_colours: list[tuple[int, int, int]],
) -> np.ndarray:
    """[size, size, 3] uint8 image of the scene.

    Args:
        position: [3] effector position in [-1, 1]^3.
        distractors: [K, 2] distractor centres (x, y) in [-1, 1]^2; ``distractor_colours`` one RGB each.
    """
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    plane = size - GAUGE
    if task.is_xy:
        top, bottom = to_pixel(task.high[1], size, flip=True), to_pixel(task.low[1], size, flip=True)
        left, right = to_pixel(task.low[0], plane), to_pixel(task.high[0], plane)
        _blend(image, slice(top, bottom + 1), slice(left, right + 1), task.colour, 0.55)
    half = DISTRACTOR_PIXELS // 2
    for (x, y), colour in zip(distractors, distractor_colours):
        row, col = to_pixel(y, size, flip=True), to_pixel(x, plane)
        image[max(row - half, 0) : row + half, max(col - half, 0) : min(col + half, plane)] = colour
    _draw_gauge(image, task, float(position[2]))
    row, col = to_pixel(position[1], size, flip=True), to_pixel(position[0], plane)
    radius = int(round(5 + 3 * (position[2] - LOW)))  # 5 px at z = -1 .. 11 px at z = +1
    _draw_disk(image, row, col, radius, EFFECTOR)
    if not gripper_open:
        _draw_disk(image, row, col, max(radius - 3, 1), CORE)
    return image


def _draw_gauge(image: np.ndarray, task: ProbeTask, z: float) -> None:
    size = image.shape[0]
    strip = slice(size - GAUGE, size)
    image[:, strip] = (70, 70, 78)
    if task.low[2] > LOW or task.high[2] < HIGH:
        top, bottom = to_pixel(task.high[2], size, flip=True), to_pixel(task.low[2], size, flip=True)
        image[top : bottom + 1, strip] = task.colour
    row = to_pixel(z, size, flip=True)
    image[max(row - 2, 0) : row + 3, strip] = EFFECTOR
