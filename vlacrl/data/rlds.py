"""Reader of OpenVLA's RLDS release of LIBERO (``openvla/modified_libero_rlds``), without TensorFlow.

The release stores one episode per ``tf.train.Example`` record in the TFRecord shards
``<root>/<suite>_no_noops/1.0.0/*.tfrecord-*`` (read by :mod:`vlacrl.data.tfrecord`), with
``steps/language_instruction`` (bytes, the task; one per step), ``steps/is_first`` (one entry per step),
``steps/action`` [T·7] float (LIBERO gripper convention), ``steps/observation/image`` (PNG/JPEG-encoded
256 × 256 RGB, already in the policy's orientation) and optionally ``steps/observation/wrist_image``. OpenVLA
removed the no-op steps. The reference's precompute worker (``rlinf/custom/rlds_logits_precompute_worker.py``)
groups episodes by instruction and names them ``demo_<i>`` in record order: ``demo_0`` = the task's first
episode.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from vlacrl.data.errors import ReplayDataError
from vlacrl.data.formats import Demo, libero_gripper_to_openvla
from vlacrl.data.precompute import SourceTask
from vlacrl.data.tfrecord import iter_records, parse_example

logger = logging.getLogger(__name__)

TFRECORD_GLOB = "*.tfrecord-*"
INSTRUCTION, IMAGE, WRIST = "steps/language_instruction", "steps/observation/image", "steps/observation/wrist_image"


def rlds_files(root: str | Path) -> list[Path]:
    """The TFRecord shards of one suite directory (``…/<suite>_no_noops/1.0.0``), sorted."""
    path = Path(root)
    files = sorted(path.glob(TFRECORD_GLOB)) if path.is_dir() else []
    if not files:
        raise ReplayDataError(
            f"no {TFRECORD_GLOB} files in {path}: download the RLDS release there (huggingface-cli download "
            f"openvla/modified_libero_rlds --repo-type dataset --local-dir <LIBERO>/datasets/modified_libero_rlds) "
            f"or pass --input with LIBERO's HDF5 demo files"
        )
    return files


def _decode_frames(encoded: list[bytes], where: str) -> np.ndarray:
    try:
        frames = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in encoded]
    except OSError as exc:
        raise ReplayDataError(f"{where}: an image does not decode ({exc})") from exc
    return np.stack(frames).astype(np.uint8)


def parse_episode(raw: bytes, where: str = "RLDS episode") -> tuple[str, Demo]:
    """One serialized episode → (instruction, :class:`Demo` in the replay layout)."""
    features = parse_example(raw)
    missing = [k for k in (INSTRUCTION, "steps/is_first", "steps/action", IMAGE) if k not in features]
    if missing:
        raise ReplayDataError(f"{where}: not an RLDS LIBERO episode (lacks {missing})")
    instruction = features[INSTRUCTION][0].decode("utf-8")
    steps = len(features["steps/is_first"])
    actions = np.asarray(features["steps/action"], dtype=np.float32)
    if steps == 0 or actions.size % steps:
        raise ReplayDataError(f"{where}: {actions.size} action values for {steps} steps")
    actions = actions.reshape(steps, -1)
    images = _decode_frames(features[IMAGE], where)
    wrist = _decode_frames(features[WRIST], where) if features.get(WRIST) else None
    if images.shape[0] != steps:
        raise ReplayDataError(f"{where}: {images.shape[0]} images for {steps} steps")
    return instruction, Demo(libero_gripper_to_openvla(actions), images, wrist_images=wrist)


def episode_instruction(raw: bytes) -> str:
    """The ``steps/language_instruction`` of one serialized episode (its first step's)."""
    values = parse_example(raw).get(INSTRUCTION)
    if not values:
        raise ReplayDataError(f"RLDS episode without {INSTRUCTION}")
    return values[0].decode("utf-8")


def iter_rlds_tasks(
    root: str | Path, *, demos_per_task: int | None = None, first_demo: int = 0
) -> Iterator[SourceTask]:
    """Episodes grouped by instruction, tasks in sorted order, episodes ``[first_demo : first_demo + n]`` of
    each task (record order over the sorted shards) named ``demo_<i>``, i from 0. The reference's default:
    every episode, ``first_demo=0``; when it limited the number it kept ``[1 : 1 + n]``."""
    files = rlds_files(root)
    records: dict[str, list[tuple[bytes, str]]] = defaultdict(list)  # serialized episodes, decoded when chosen
    for path in files:
        for index, raw in enumerate(iter_records(path)):
            records[episode_instruction(raw)].append((raw, f"{path} record {index}"))
    for instruction in sorted(records):
        chosen = records[instruction][first_demo:]
        chosen = chosen if demos_per_task is None else chosen[:demos_per_task]
        demos = [(f"demo_{i}", parse_episode(raw, where)[1]) for i, (raw, where) in enumerate(chosen)]
        yield SourceTask(instruction, demos, str(root))
