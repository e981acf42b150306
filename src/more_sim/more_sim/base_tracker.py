"""A kinematic robot base that follows the 12-dim command the way the low-level controller would.

The command first goes through the action contract (`ActionSpec.for_controller`: clipped to the
controller's trained ranges, gait snapped, terminate binarised). Velocities and posture then follow
the command through a first-order lag with time constant `time_constant_s` (exact discretisation,
so the response does not depend on the step size), and the pose integrates the body-frame
velocities at the mid-step heading. A terminate command brings the velocities to zero.
Pure numpy: the simulator and the ROS node share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from more_common.action_contract import DEFAULT_SPEC, INDEX, TERMINATE, ActionSpec


@dataclass(frozen=True)
class BaseState:
    x: float = 0.0  # [m]   world frame
    y: float = 0.0  # [m]
    yaw: float = 0.0  # [rad]
    vx: float = 0.0  # [m/s] body frame
    vy: float = 0.0  # [m/s]
    wz: float = 0.0  # [rad/s]
    body_height: float = 0.0  # [m]   offset from nominal
    pitch: float = 0.0  # [rad]


@dataclass(frozen=True)
class TrackerConfig:
    time_constant_s: float = 0.25  # velocity and posture lag of a walk-these-ways Go2 (order of magnitude)
    spec: ActionSpec = DEFAULT_SPEC

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_constant_s) and self.time_constant_s > 0):
            raise ValueError(f"time_constant_s must be > 0, got {self.time_constant_s}")


def step_base(state: BaseState, command: np.ndarray, dt: float, config: TrackerConfig = TrackerConfig()) -> BaseState:
    """Advance the base by dt seconds under `command` (12-vector in contract order)."""
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be > 0, got {dt}")
    cmd = config.spec.for_controller(command)
    stop = cmd[TERMINATE] >= 0.5
    target = {
        "vx": 0.0 if stop else cmd[INDEX["vx"]],
        "vy": 0.0 if stop else cmd[INDEX["vy"]],
        "wz": 0.0 if stop else cmd[INDEX["wz"]],
        "body_height": cmd[INDEX["body_height"]],
        "pitch": cmd[INDEX["pitch"]],
    }
    alpha = 1.0 - math.exp(-dt / config.time_constant_s)
    new = {k: getattr(state, k) + alpha * (v - getattr(state, k)) for k, v in target.items()}
    # Integrate with the average of old and new velocities at the mid-step heading.
    vx = 0.5 * (state.vx + new["vx"])
    vy = 0.5 * (state.vy + new["vy"])
    wz = 0.5 * (state.wz + new["wz"])
    heading = state.yaw + 0.5 * wz * dt
    x = state.x + (vx * math.cos(heading) - vy * math.sin(heading)) * dt
    y = state.y + (vx * math.sin(heading) + vy * math.cos(heading)) * dt
    yaw = math.atan2(math.sin(state.yaw + wz * dt), math.cos(state.yaw + wz * dt))
    return replace(state, x=x, y=y, yaw=yaw, **new)
