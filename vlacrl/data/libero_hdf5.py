"""LIBERO's own demonstration HDF5 files (robomimic layout), read into the replay layout.

File layout (as LIBERO's ``create_dataset.py`` writes it, e.g. ``libero_spatial/<task>_demo.hdf5``):

* group ``data`` with attrs ``problem_info`` (JSON with ``language_instruction``), ``env_args`` (JSON),
  ``macros_image_convention`` (``"opengl"``: frames are stored upside down), ``bddl_file_name``,
  ``num_demos``, ``total``;
* ``data/demo_<i>/actions`` [T, 7] float (gripper -1 open / +1 close), ``obs/agentview_rgb`` and
  ``obs/eye_in_hand_rgb`` [T, 128, 128, 3] uint8, ``obs/{gripper_states, joint_states, ee_pos, ...}``,
  ``states``, ``robot_states``, ``rewards``, ``dones``; demo attrs ``num_samples``, ``model_file``,
  ``init_state``.

:func:`read_libero_demo` converts a demo to the replay layout the policy sees (docs/methods/er.md): the gripper to
the OpenVLA convention, ``opengl`` frames rotated by 180°, and (by default) OpenVLA's no-op steps dropped
as in its ``modified_libero_rlds`` re-release. :func:`write_libero_demo_file` writes the same layout (tests,
hand-made demos).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from vlacrl.data.errors import ReplayDataError
from vlacrl.data.formats import (
    Demo,
    libero_gripper_to_openvla,
    noop_mask,
    rotate_180,
    sorted_demo_names,
    task_description_from_filename,
)

AGENTVIEW = "agentview_rgb"
WRIST = "eye_in_hand_rgb"


def is_libero_demo_file(path: str | Path) -> bool:
    """True for LIBERO's own files (``data`` carries ``problem_info``), False for the replay/cache layout."""
    with h5py.File(path, "r") as file:
        return "data" in file and "problem_info" in file["data"].attrs


def _attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def libero_instruction(path: str | Path) -> str:
    """The task's language instruction from ``problem_info``, else the reference's file-name rule."""
    with h5py.File(path, "r") as file:
        raw = file["data"].attrs.get("problem_info") if "data" in file else None
    if raw is None:
        return task_description_from_filename(path)
    info = json.loads(_attr_str(raw))
    text = info.get("language_instruction", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    return text.strip().strip('"') or task_description_from_filename(path)


def list_demos(path: str | Path) -> list[str]:
    """The demo groups of a file in lexicographic order (``demo_0, demo_1, demo_10, …``, as the reference)."""
    try:
        with h5py.File(path, "r") as file:
            if "data" not in file:
                raise ReplayDataError(f"{path} has no 'data' group: not a LIBERO/replay demo HDF5 file")
            return sorted_demo_names(k for k in file["data"].keys() if k.startswith("demo_"))
    except OSError as exc:
        raise ReplayDataError(f"cannot open {path} as HDF5 ({exc})") from exc


def read_libero_demo(path: str | Path, name: str, *, filter_noops: bool = True, with_wrist: bool = False) -> Demo:
    """``data/<name>`` of a LIBERO demo file → :class:`Demo` in the replay layout (converted, see module doc)."""
    with h5py.File(path, "r") as file:
        data = file["data"]
        if name not in data:
            raise ReplayDataError(f"{path} has no demo {name!r}")
        convention = _attr_str(data.attrs.get("macros_image_convention", "opengl"))
        group = data[name]
        actions = np.asarray(group["actions"], dtype=np.float32)
        images = np.asarray(group["obs"][AGENTVIEW])
        wrist = np.asarray(group["obs"][WRIST]) if with_wrist and WRIST in group["obs"] else None
    if convention == "opengl":
        images = rotate_180(images)
        wrist = None if wrist is None else rotate_180(wrist)
    demo = Demo(actions=libero_gripper_to_openvla(actions), images=images, wrist_images=wrist)
    if filter_noops:
        demo = demo.select(noop_mask(actions))
    return demo


def _write_libero_demo(data: h5py.Group, name: str, actions: np.ndarray, images: np.ndarray) -> None:
    steps = len(actions)
    group = data.create_group(name)
    group.create_dataset("actions", data=np.asarray(actions, dtype=np.float64))
    obs = group.create_group("obs")
    obs.create_dataset(AGENTVIEW, data=np.asarray(images, dtype=np.uint8))
    obs.create_dataset(WRIST, data=np.asarray(images, dtype=np.uint8))
    obs.create_dataset("gripper_states", data=np.zeros((steps, 2)))
    obs.create_dataset("joint_states", data=np.zeros((steps, 7)))
    obs.create_dataset("ee_pos", data=np.zeros((steps, 3)))
    obs.create_dataset("ee_ori", data=np.zeros((steps, 3)))
    obs.create_dataset("ee_states", data=np.zeros((steps, 6)))
    group.create_dataset("states", data=np.zeros((steps, 9)))
    group.create_dataset("robot_states", data=np.zeros((steps, 9)))
    rewards = np.zeros(steps, dtype=np.uint8)
    rewards[-1:] = 1
    group.create_dataset("rewards", data=rewards)
    group.create_dataset("dones", data=rewards.copy())
    group.attrs["num_samples"] = steps
    group.attrs["model_file"] = "<mujoco/>"
    group.attrs["init_state"] = np.zeros(9)


def write_libero_demo_file(
    path: str | Path,
    instruction: str,
    demos: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    image_convention: str = "opengl",
) -> Path:
    """Write a file in LIBERO's demo layout: ``demos`` = [(actions [T, 7] LIBERO convention, agentview
    frames [T, H, W, 3] uint8 stored as given, i.e. upside down for ``opengl``)], named ``demo_0, demo_1, …``.

    Low-dimensional observations and simulator states are zero-filled placeholders.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    problem = {"problem_name": "libero_tabletop_manipulation", "domain_name": "robosuite", "language_instruction": ""}
    problem["language_instruction"] = instruction
    with h5py.File(path, "w") as file:
        data = file.create_group("data")
        data.attrs["env_name"] = "Libero_Tabletop_Manipulation"
        data.attrs["problem_info"] = json.dumps(problem)
        data.attrs["env_args"] = json.dumps({"type": 1, "env_name": "Libero_Tabletop_Manipulation", "env_kwargs": {}})
        data.attrs["macros_image_convention"] = image_convention
        data.attrs["bddl_file_name"] = f"{path.stem.removesuffix('_demo')}.bddl"
        data.attrs["tag"] = "libero-v1"
        total = 0
        for index, (actions, images) in enumerate(demos):
            _write_libero_demo(data, f"demo_{index}", actions, images)
            total += len(actions)
        data.attrs["num_demos"] = len(demos)
        data.attrs["total"] = total
    return path
