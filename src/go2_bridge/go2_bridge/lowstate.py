"""unitree_go/LowState -> the robot state the bridge decides on (pure; duck-typed message access).

Quaternions: the Go2's IMU reports (w, x, y, z); ROS messages use (x, y, z, w). Roll/pitch/yaw are
recomputed from the quaternion (ZYX convention) so the tilt check never depends on the optional
`rpy` field. Nothing here raises on bad numbers: NaN/inf are kept and `RobotState.finite` says so,
so the safety machine decides what to do with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from go2_bridge.go2 import NUM_MOTORS


@dataclass
class RobotState:
    q: np.ndarray  # (12,) [rad] SDK order
    dq: np.ndarray  # (12,) [rad/s]
    tau_est: np.ndarray  # (12,) [Nm]
    quaternion_wxyz: np.ndarray  # (4,)
    gyroscope: np.ndarray  # (3,) [rad/s] body frame
    accelerometer: np.ndarray  # (3,) [m/s^2] body frame
    foot_force: np.ndarray  # (4,) raw sensor values, FR FL RR RL
    wireless_remote: bytes  # 40 bytes
    tick: int = 0

    @property
    def finite(self) -> bool:
        return bool(
            np.isfinite(self.q).all()
            and np.isfinite(self.dq).all()
            and np.isfinite(self.quaternion_wxyz).all()
            and np.isfinite(self.gyroscope).all()
        )

    def roll_pitch_yaw(self) -> tuple[float, float, float]:
        return rpy_from_quaternion(self.quaternion_wxyz)

    def nonfinite_fields(self) -> list[str]:
        """Names of the fields holding NaN or inf (what must not be published downstream)."""
        return [name for name in VALUE_FIELDS if not np.isfinite(getattr(self, name)).all()]

    @property
    def orientation_ok(self) -> bool:
        """A finite quaternion that can be normalised (the IMU's orientation is usable)."""
        q = self.quaternion_wxyz
        return bool(np.isfinite(q).all() and math.sqrt(float(np.dot(q, q))) >= MIN_QUATERNION_NORM)


# The numeric fields of RobotState, in the order they are reported.
VALUE_FIELDS: tuple[str, ...] = ("q", "dq", "tau_est", "quaternion_wxyz", "gyroscope", "accelerometer", "foot_force")
# Below this norm a quaternion has no direction worth normalising (the Go2 reports unit quaternions).
MIN_QUATERNION_NORM = 1e-6


def rpy_from_quaternion(q_wxyz: np.ndarray) -> tuple[float, float, float]:
    """ZYX Euler angles of a (w, x, y, z) quaternion; NaN in, NaN out; normalises first."""
    w, x, y, z = (float(v) for v in q_wxyz)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if not math.isfinite(n) or n < MIN_QUATERNION_NORM:
        return (math.nan, math.nan, math.nan)
    w, x, y, z = w / n, x / n, y / n, z / n
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return (roll, pitch, yaw)


def parse_lowstate(msg: Any) -> RobotState:
    """Read a LowState (ROS message or look-alike) into a RobotState."""
    motors = msg.motor_state[:NUM_MOTORS]
    imu = msg.imu_state
    return RobotState(
        q=np.fromiter((m.q for m in motors), dtype=np.float64, count=NUM_MOTORS),
        dq=np.fromiter((m.dq for m in motors), dtype=np.float64, count=NUM_MOTORS),
        tau_est=np.fromiter((m.tau_est for m in motors), dtype=np.float64, count=NUM_MOTORS),
        quaternion_wxyz=np.asarray(imu.quaternion, dtype=np.float64).reshape(4),
        gyroscope=np.asarray(imu.gyroscope, dtype=np.float64).reshape(3),
        accelerometer=np.asarray(imu.accelerometer, dtype=np.float64).reshape(3),
        foot_force=np.asarray(msg.foot_force, dtype=np.float64).reshape(4),
        wireless_remote=bytes(np.asarray(msg.wireless_remote, dtype=np.uint8).reshape(40)),
        tick=int(msg.tick),
    )


def foot_contacts(foot_force: np.ndarray, threshold: float) -> np.ndarray:
    """1.0 where the foot force sensor reads above `threshold`, else 0.0 (NaN counts as no contact)."""
    f = np.asarray(foot_force, dtype=np.float64)
    return np.where(np.nan_to_num(f, nan=-np.inf) > threshold, 1.0, 0.0)
