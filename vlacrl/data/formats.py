"""The in-memory demonstration and the conventions shared by every replay data format (docs/methods/er.md).

A :class:`Demo` is one demonstration in the **replay layout**, the layout the policy consumes:

* ``actions`` [T, 7] float32 in the OpenVLA gripper convention (last dim: 1 = open, 0 = close);
* ``images`` [T, H, W, 3] uint8, ``agentview`` already in the policy's orientation (rotated 180° relative to
  the raw robosuite render, as the env wrapper and the RLDS release give it);
* optionally ``wrist_images`` [T, H, W, 3] uint8, ``processed_action_logits`` [T, 56, 256] float32 (base-model
  logits at the 56 action positions restricted to the 256 action ids), ``predicted_actions`` [T, C, 7]
  (greedy decode) and ``action_tokens`` [T - C + 1, 56] int64 (expert tokens of ``actions[t : t + C]``).

LIBERO's own demo files use the LIBERO gripper convention (-1 open, +1 close) and un-rotated images; the
readers in :mod:`vlacrl.data.libero_hdf5` convert them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

NOOP_THRESHOLD = 1e-4


@dataclass
class Demo:
    """One demonstration in the replay layout (shapes in the module docstring)."""

    actions: np.ndarray
    images: np.ndarray
    wrist_images: np.ndarray | None = None
    processed_action_logits: np.ndarray | None = None
    predicted_actions: np.ndarray | None = None
    action_tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.actions.ndim != 2:
            raise ValueError(f"actions must be [T, D], got {self.actions.shape}")
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or len(self.images) != len(self.actions):
            raise ValueError(f"images must be [T={len(self.actions)}, H, W, 3], got {self.images.shape}")
        if self.processed_action_logits is not None and len(self.processed_action_logits) != len(self.actions):
            raise ValueError(
                f"processed_action_logits has {len(self.processed_action_logits)} steps, actions {len(self.actions)}"
            )

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    def select(self, keep: np.ndarray) -> Demo:
        """The demo restricted to the steps where ``keep`` [T] bool is True (per-step arrays only)."""
        return replace(
            self,
            actions=self.actions[keep],
            images=self.images[keep],
            wrist_images=None if self.wrist_images is None else self.wrist_images[keep],
            processed_action_logits=None,
            predicted_actions=None,
            action_tokens=None,
        )


def libero_gripper_to_openvla(actions: np.ndarray) -> np.ndarray:
    """[..., 7] LIBERO actions (gripper -1 open / +1 close) → OpenVLA convention ``g' = (1 - g) / 2`` (1 open)."""
    out = np.array(actions, dtype=np.float32, copy=True)
    out[..., -1] = (1.0 - out[..., -1]) / 2.0
    return out


def rotate_180(images: np.ndarray) -> np.ndarray:
    """[T, H, W, C] → the same frames rotated by 180° (flip of both image axes), contiguous."""
    return np.ascontiguousarray(images[:, ::-1, ::-1])


def noop_mask(actions: np.ndarray, threshold: float = NOOP_THRESHOLD) -> np.ndarray:
    """[T] bool, True for the steps to **keep**: OpenVLA's no-op filter of its LIBERO re-release.

    A step is a no-op when its first 6 dims have L2 norm < ``threshold`` and its gripper command equals the
    previous kept step's (the very first step only needs the small norm).
    """
    keep = np.ones(len(actions), dtype=bool)
    previous = None
    for t, action in enumerate(np.asarray(actions)):
        small = float(np.linalg.norm(action[:-1])) < threshold
        if small and (previous is None or action[-1] == previous[-1]):
            keep[t] = False
            continue
        previous = action
    return keep


def task_description_from_filename(path: str | Path) -> str:
    """The reference's rule: file name without ``.hdf5``, split on ``_``, a trailing ``demo`` dropped, joined
    with spaces (``put_the_bowl_on_the_plate_demo.hdf5`` → ``put the bowl on the plate``)."""
    name = Path(path).name
    if name.endswith(".hdf5"):
        name = name[: -len(".hdf5")]
    parts = name.split("_")
    if parts and parts[-1] == "demo":
        parts = parts[:-1]
    return " ".join(parts)


def cache_file_name(instruction: str) -> str:
    """The cache file of one task: the instruction with spaces and slashes → ``_``, plus ``.hdf5``."""
    return instruction.replace(" ", "_").replace("/", "_") + ".hdf5"


def normalize_instruction(text: str) -> str:
    """Lower case, ``_`` → space, single spaces: the form used to match file names against LIBERO tasks."""
    return " ".join(text.replace("_", " ").lower().split())


def sorted_demo_names(names) -> list[str]:
    """Demo group names in the reference's (lexicographic) order: ``demo_0, demo_1, demo_10, demo_2, …``."""
    return sorted(str(n) for n in names)


def expert_windows(actions: np.ndarray, chunk: int) -> np.ndarray:
    """[T, D] → [max(T - chunk + 1, 0), chunk, D]: the action chunk starting at every valid t."""
    steps = len(actions) - chunk + 1
    if steps <= 0:
        return np.zeros((0, chunk, actions.shape[-1]), dtype=actions.dtype)
    return np.stack([actions[t : t + chunk] for t in range(steps)])
