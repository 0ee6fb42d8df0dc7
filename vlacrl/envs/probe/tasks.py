"""The probe suite: 10 reaching tasks in a unit cube, each a target box and (for two) a gripper state.

Coordinates: the effector lives in [-1, 1]^3; x grows to the right of the image, y to its top, z is drawn as a
gauge on the image's right edge. Targets of different tasks conflict (right vs left, top vs bottom, up vs down,
top-right vs bottom-left, open vs closed), so learning one task can undo another: forgetting is possible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUITE = "probe"
LOW, HIGH = -1.0, 1.0  # workspace bounds on every axis


@dataclass(frozen=True)
class ProbeTask:
    """One task: success while the effector is inside ``[low, high]`` (per axis) with the required gripper state."""

    name: str
    language: str  # the instruction the policy is prompted with
    low: tuple[float, float, float]
    high: tuple[float, float, float]
    colour: tuple[int, int, int]  # RGB of the target drawn in the image
    gripper_open: bool | None = None  # None: either; True: must be open; False: must be closed

    def contains(self, position: np.ndarray, gripper_open: bool) -> bool:
        """Whether ``position`` [3] (and the gripper state) satisfies the goal."""
        inside = bool(np.all(position >= self.low) and np.all(position <= self.high))
        return inside and (self.gripper_open is None or self.gripper_open == gripper_open)

    @property
    def centre(self) -> np.ndarray:
        """[3] centre of the target box (what the scripted expert heads for)."""
        return (np.asarray(self.low) + np.asarray(self.high)) / 2.0

    @property
    def is_xy(self) -> bool:
        """Whether the target constrains x or y (drawn as a box in the image) rather than only z (the gauge)."""
        return bool(self.low[0] > LOW or self.high[0] < HIGH or self.low[1] > LOW or self.high[1] < HIGH)


_ANY = (LOW, HIGH)


def _box(x=_ANY, y=_ANY, z=_ANY) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    return (x[0], y[0], z[0]), (x[1], y[1], z[1])


def _task(name: str, language: str, box, colour, gripper_open=None) -> ProbeTask:
    return ProbeTask(name, language, box[0], box[1], colour, gripper_open)


EDGE, CORNER = 0.5, 0.35  # how far from the centre the axis targets and the corner targets begin

PROBE_TASKS: tuple[ProbeTask, ...] = (
    _task("right", "move the gripper to the red zone on the right", _box(x=(EDGE, HIGH)), (220, 50, 50)),
    _task("left", "move the gripper to the blue zone on the left", _box(x=(LOW, -EDGE)), (50, 90, 230)),
    _task("top", "move the gripper to the green zone at the top", _box(y=(EDGE, HIGH)), (50, 190, 70)),
    _task("bottom", "move the gripper to the yellow zone at the bottom", _box(y=(LOW, -EDGE)), (230, 210, 40)),
    _task("raise", "raise the gripper above the purple line", _box(z=(EDGE, HIGH)), (160, 70, 200)),
    _task("lower", "lower the gripper below the orange line", _box(z=(LOW, -EDGE)), (240, 140, 30)),
    _task(
        "top_right",
        "move the gripper to the cyan corner at the top right",
        _box(x=(CORNER, HIGH), y=(CORNER, HIGH)),
        (40, 200, 210),
    ),  # fmt: skip
    _task(
        "bottom_left",
        "move the gripper to the pink corner at the bottom left",
        _box(x=(LOW, -CORNER), y=(LOW, -CORNER)),
        (240, 120, 180),
    ),  # fmt: skip
    _task(
        "right_open",
        "open the gripper in the white zone on the right",
        _box(x=(EDGE, HIGH)),
        (235, 235, 235),
        gripper_open=True,
    ),  # fmt: skip
    _task(
        "left_closed",
        "close the gripper in the grey zone on the left",
        _box(x=(LOW, -EDGE)),
        (150, 150, 150),
        gripper_open=False,
    ),  # fmt: skip
)
#: Task ids: 0-2 move along the three axes (right, top, raise), so a sequence of them can be learnt one after
#: another without undoing the last; 3-5 are their opposites (learning 3 after 0 must undo 0), 6-7 corners,
#: 8-9 need a gripper state too.
ORDER = ("right", "top", "raise", "left", "bottom", "lower", "top_right", "bottom_left", "right_open", "left_closed")
PROBE_TASKS = tuple(sorted(PROBE_TASKS, key=lambda t: ORDER.index(t.name)))
NUM_TASKS = len(PROBE_TASKS)


def task(task_id: int) -> ProbeTask:
    return PROBE_TASKS[task_id]
