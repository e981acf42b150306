"""Caps on the contract command's walking speed and turn rate: a deployment's limits and the stale-state cap.

Both return a capped copy of the 12-dim contract command (or it as given when the limit is 0: no cap). A non-finite
value, and a command that is not 12 numbers, is left as it is for the core to reject as invalid: a cap must not turn a
NaN into a plausible command, nor fail on a command the core would have answered with a stand.
"""

from __future__ import annotations

import numpy as np

from more_common.action_contract import NUM_DIMS, VX, VY, WZ


def _clip_dims(command: np.ndarray | None, dims: tuple[int, ...], limit: float) -> np.ndarray | None:
    if command is None or limit <= 0:
        return command
    try:
        capped = np.array(command, dtype=np.float64)
    except (TypeError, ValueError):
        return command
    if capped.shape != (NUM_DIMS,):
        return command
    for i in dims:
        if np.isfinite(capped[i]):
            capped[i] = min(max(capped[i], -limit), limit)
    return capped


def cap_speed(command: np.ndarray | None, limit: float) -> np.ndarray | None:
    """|vx|, |vy| <= `limit` [m/s]."""
    return _clip_dims(command, (VX, VY), limit)


def cap_yaw_rate(command: np.ndarray | None, limit: float) -> np.ndarray | None:
    """|wz| <= `limit` [rad/s]."""
    return _clip_dims(command, (WZ,), limit)
