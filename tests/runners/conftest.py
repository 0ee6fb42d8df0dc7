"""Fixtures shared by the runner tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest


@pytest.fixture(scope="session")
def write_libero_demos() -> Callable[[Path, int], Path]:
    """``write(out, episodes)``: LIBERO-format demo files of libero_spatial tasks 0 and 1 in ``out``, each with
    ``episodes`` (1 or 2) episodes of 12 random steps (gripper closed, 32 px frames; the second one reversed)."""
    from vlacrl.data.libero_hdf5 import write_libero_demo_file
    from vlacrl.envs.libero import suites

    def write(out: Path, episodes: int) -> Path:
        rng = np.random.default_rng(0)
        for task in (0, 1):
            language = suites.task_spec("libero_spatial", task).language
            actions = rng.uniform(-0.9, 0.9, (12, 7))
            actions[:, -1] = 1.0
            frames = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
            both = [(actions, frames), (actions[::-1].copy(), frames[::-1].copy())]
            write_libero_demo_file(out / f"{language.replace(' ', '_')}_demo.hdf5", language, both[:episodes])
        return out

    return write
