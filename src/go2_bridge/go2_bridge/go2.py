"""Unitree Go2 constants in the SDK's motor order: joint names, limits, stand pose, stop values.

[Contract] Every 12-vector in go2_bridge is in Unitree SDK motor order, legs FR, FL, RR, RL, each
(hip, thigh, calf): index 3 * leg + joint. Facts from unitree_ros2 and the Go2's published limits.
"""

from __future__ import annotations

import numpy as np

NUM_MOTORS = 12  # leg motors; LowCmd/LowState carry 20 entries, 12..19 unused on the Go2
NUM_MOTOR_SLOTS = 20

LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")
JOINT_KINDS: tuple[str, ...] = ("hip", "thigh", "calf")
JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{kind}_joint" for leg in LEGS for kind in JOINT_KINDS)
FOOT_NAMES: tuple[str, ...] = tuple(f"{leg}_foot" for leg in LEGS)

HEAD = (0xFE, 0xEF)
LEVEL_LOW = 0xFF
MODE_SERVO = 0x01
MODE_STOP = 0x00
POS_STOP_F = 2.146e9  # q value that disables the position term
VEL_STOP_F = 16000.0  # dq value that disables the velocity term

_FRONT = (True, True, False, False)  # FR, FL front; RR, RL rear
_HIP = (-1.0472, 1.0472)
_THIGH_FRONT = (-1.5708, 3.4907)
_THIGH_REAR = (-0.5236, 4.5379)
_CALF = (-2.7227, -0.83776)


def _per_joint(hip: float, thigh: float, calf: float) -> np.ndarray:
    return np.asarray([hip, thigh, calf] * len(LEGS), dtype=np.float64)


Q_MIN = np.asarray(
    [v for front in _FRONT for v in (_HIP[0], (_THIGH_FRONT if front else _THIGH_REAR)[0], _CALF[0])],
    dtype=np.float64,
)
Q_MAX = np.asarray(
    [v for front in _FRONT for v in (_HIP[1], (_THIGH_FRONT if front else _THIGH_REAR)[1], _CALF[1])],
    dtype=np.float64,
)
TORQUE_MAX = _per_joint(23.7, 23.7, 45.43)  # [Nm]
VELOCITY_MAX = _per_joint(30.1, 30.1, 20.07)  # [rad/s]

# The stand pose is walk-these-ways' default pose (SDK order), so ACTIVE starts where STAND_UP ends.
# Hips: left legs +0.1, right legs -0.1 (feet slightly outward); thighs front 0.8, rear 1.0; calves -1.5.
STAND_POSE = np.asarray([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5], dtype=np.float64)

# The Go2 lying on its belly (what the MuJoCo Go2 starts from): thighs folded forward, calves at the stop.
LYING_POSE = np.asarray([-0.0, 1.2, -2.7, 0.0, 1.2, -2.7, -0.0, 1.2, -2.7, 0.0, 1.2, -2.7], dtype=np.float64)


def joint_index(name: str) -> int:
    """Index of a joint name like 'RL_calf_joint' in SDK order."""
    return JOINT_NAMES.index(name)
