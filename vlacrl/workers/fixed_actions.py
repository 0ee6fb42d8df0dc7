"""The reference's "random action" evaluation baseline (``rollout.random_action: True``): not random, and no model.

continual-vla-rl's ``rlinf/custom/random_action_rollout_worker.py`` answers every evaluation env batch with the next
action of a fixed cycle of 7, the same for every env and every sub-step of the chunk, in model space (before the
env's conversion: gripper 0 → LIBERO +1 = close, 1 → −1 = open): 0.5 along +x, +y, +z, +rx, +ry, +rz with the
gripper value 0, then no motion with the gripper value 1. One counter per rollout worker advances by one per
answered batch and is never reset (so an evaluation epoch of 64 chunk steps ends one step into the cycle and the
next epoch starts there), as the reference's.
"""

from __future__ import annotations

import numpy as np

CYCLE = np.array([
    [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
], dtype=np.float32)  # fmt: skip


class FixedActionCycle:
    """Answers env batches with :data:`CYCLE`'s next row, repeated over envs and the chunk's sub-steps."""

    def __init__(self, chunk_len: int, action_dim: int = 7):
        if action_dim != CYCLE.shape[1]:
            raise ValueError(f"rollout.random_action needs 7-D actions, the model has {action_dim}")
        self.chunk_len, self.index = int(chunk_len), 0

    def next(self, num_envs: int) -> np.ndarray:
        """[num_envs, chunk_len, 7] float32."""
        action = CYCLE[self.index]
        self.index = (self.index + 1) % len(CYCLE)
        return np.broadcast_to(action, (num_envs, self.chunk_len, len(action))).copy()
