"""Optional reader of OpenVLA's RLDS release of LIBERO (``openvla/modified_libero_rlds``, downloaded by users).

The release stores one episode per TFRecord example under
``<root>/<suite>_no_noops/1.0.0/*.tfrecord-*`` with ``steps/language_instruction`` (bytes, the task),
``steps/is_first`` (one entry per step), ``steps/action`` [T·7] float (LIBERO gripper convention),
``steps/observation/image`` (encoded 256 × 256 RGB, already in the policy's orientation) and optionally
``steps/observation/wrist_image``. No-op steps were removed by OpenVLA.

Reading needs ``tensorflow`` (not a dependency of vlacrl; ``pip install tensorflow``); without it
:func:`iter_rlds_tasks` raises :class:`OptionalDependencyError` with one clear line.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vlacrl.data.errors import OptionalDependencyError, ReplayDataError
from vlacrl.data.formats import Demo, libero_gripper_to_openvla
from vlacrl.data.precompute import SourceTask

logger = logging.getLogger(__name__)

TFRECORD_GLOB = "*.tfrecord-*"


def import_tensorflow() -> Any:
    """``tensorflow``, or :class:`OptionalDependencyError` saying how to get it."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise OptionalDependencyError(
            "reading the RLDS release (openvla/modified_libero_rlds) needs tensorflow, which vlacrl does not "
            "install: pip install tensorflow (or convert LIBERO's HDF5 demo files instead)"
        ) from exc
    return tf


def rlds_files(root: str | Path) -> list[Path]:
    """The TFRecord shards of one suite directory (``…/<suite>_no_noops/1.0.0``), sorted."""
    path = Path(root)
    files = sorted(path.glob(TFRECORD_GLOB)) if path.is_dir() else []
    if not files:
        raise ReplayDataError(
            f"no {TFRECORD_GLOB} files in {path} (expected …/modified_libero_rlds/<suite>_no_noops/1.0.0)"
        )
    return files


def episode_instruction(tf: Any, raw: bytes) -> str:
    """The ``steps/language_instruction`` of one serialized episode."""
    example = tf.train.Example()
    example.ParseFromString(raw)
    return example.features.feature["steps/language_instruction"].bytes_list.value[0].decode("utf-8")


def parse_episode(tf: Any, raw: bytes) -> tuple[str, Demo]:
    """One serialized ``tf.train.Example`` → (instruction, :class:`Demo` in the replay layout)."""
    example = tf.train.Example()
    example.ParseFromString(raw)
    features = example.features.feature
    instruction = features["steps/language_instruction"].bytes_list.value[0].decode("utf-8")
    steps = len(features["steps/is_first"].int64_list.value)
    actions = np.asarray(features["steps/action"].float_list.value, dtype=np.float32).reshape(steps, -1)

    def decode(key: str) -> np.ndarray:
        frames = [tf.io.decode_image(b, channels=3).numpy() for b in features[key].bytes_list.value]
        return np.stack(frames).astype(np.uint8)

    wrist = decode("steps/observation/wrist_image") if "steps/observation/wrist_image" in features else None
    demo = Demo(libero_gripper_to_openvla(actions), decode("steps/observation/image"), wrist_images=wrist)
    return instruction, demo


def iter_rlds_tasks(
    root: str | Path, *, demos_per_task: int | None = None, first_demo: int = 0
) -> Iterator[SourceTask]:
    """Episodes grouped by instruction, tasks in sorted order, episodes ``[first_demo : first_demo + n]`` of
    each task (record order) named ``demo_<i>``. The reference used ``first_demo=1`` when it limited demos."""
    tf = import_tensorflow()
    files = rlds_files(root)
    records: dict[str, list[bytes]] = defaultdict(list)  # serialized episodes, decoded only when chosen
    for record in tf.data.TFRecordDataset([str(f) for f in files]):
        raw = record.numpy()
        records[episode_instruction(tf, raw)].append(raw)
    for instruction in sorted(records):
        chosen = records[instruction][first_demo:]
        chosen = chosen if demos_per_task is None else chosen[:demos_per_task]
        demos = [(f"demo_{i}", parse_episode(tf, raw)[1]) for i, raw in enumerate(chosen)]
        yield SourceTask(instruction, demos, str(root))
