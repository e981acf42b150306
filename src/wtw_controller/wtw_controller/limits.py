"""The Go2's joint ranges (SDK order) and position targets beyond them, sent as an equivalent feed-forward torque.

The bridge clips every LowCmd position target into the joint range (its contract, which the simulated robot
and the tests check). Policies are trained without that clip: the bundled velocity policy asks for calf targets
past the knee's -0.838 rad stop in about 30 % of its steps while walking at 0.5 m/s, and with those targets
clipped the knees push less, the trunk sinks ~9 cm in 4 s and the robot ends up falling (measured in the
controller + bridge + MuJoCo loop, docs/robot.md). So a target q* outside the range is sent as the nearest end of
the range, q_lim (a hair inside it), plus the feed-forward torque tau_ff = kp (q* - q_lim): the motor's PD torque
kp (q_lim - q) + tau_ff equals kp (q* - q) exactly, and the target stays in range. The bridge still bounds the
sum |tau_ff + kp (q_lim - q)| by the motor's torque limit.

tau_ff itself is capped at the motor's torque limit here: the bridge clamps it there first anyway (so the LowCmd is
the same), but a feed-forward past the limit is what its bad-input check reports (`targets_beyond_limits`), and
the velocity policy asks for targets that far past a stop when the VLA's commands change abruptly (seen in
`make demo`).
"""

from __future__ import annotations

import numpy as np

_HIP = (-1.0472, 1.0472)
_THIGH_FRONT = (-1.5708, 3.4907)
_THIGH_REAR = (-0.5236, 4.5379)
_CALF = (-2.7227, -0.83776)
_RANGES = (_HIP, _THIGH_FRONT, _CALF, _HIP, _THIGH_FRONT, _CALF, _HIP, _THIGH_REAR, _CALF, _HIP, _THIGH_REAR, _CALF)
# Go2 joint limits [rad] in SDK order FR, FL, RR, RL x (hip, thigh, calf) (Unitree's published values)
Q_MIN = np.array([lo for lo, _ in _RANGES])
Q_MAX = np.array([hi for _, hi in _RANGES])
INSIDE = 1e-4  # [rad] targets are put this far inside the range, so float32 rounding cannot cross it
TORQUE_MAX = np.array([23.7, 23.7, 45.43] * 4)  # [Nm] hip, thigh, calf per leg (Unitree's published values)


def split_targets(q_star: np.ndarray, kp: float) -> tuple[np.ndarray, np.ndarray]:
    """(position targets within the joint range, feed-forward torques within the torque limit) with the same PD
    torque as `q_star` wherever the motor can give it."""
    q_star = np.asarray(q_star, dtype=np.float64)
    q = np.clip(q_star, Q_MIN + INSIDE, Q_MAX - INSIDE)
    return q, np.clip(kp * (q_star - q), -TORQUE_MAX, TORQUE_MAX)
