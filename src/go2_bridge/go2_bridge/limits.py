"""Clamping motor commands to what the Go2 may be sent: the last step before every LowCmd.

[Contract] For any input (NaN, inf, huge values) `limit_commands` returns finite commands with
  Q_MIN <= q <= Q_MAX, |dq| <= VELOCITY_MAX, 0 <= kp <= kp_max, 0 <= kd <= kd_max, |tau| <= TORQUE_MAX,
and, where the measured position q_m is finite, |tau + kp (q - q_m)| <= TORQUE_MAX: the feed-forward
plus position term the motor would apply at the measured position stays within the torque limit (the
target is pulled towards q_m, or kp lowered when q_m lies outside the joint range). Where q_m is not
finite, kp is 0: without a measured position a stiffness cannot be bounded. The velocity term
kd (dq - dq_m) is bounded by kd_max and the motor's own saturation (documented in docs/robot.md).
"""

from __future__ import annotations

import numpy as np

from go2_bridge.go2 import Q_MAX, Q_MIN, STAND_POSE, TORQUE_MAX, VELOCITY_MAX
from go2_bridge.lowcmd import MotorCommands

# Targets stay this far inside the joint range so float32 rounding in LowCmd cannot cross a limit.
Q_EPS = 1e-5
Q_LOW = Q_MIN + Q_EPS
Q_HIGH = Q_MAX - Q_EPS
# Relative margin on the torque bound for the same reason.
TAU_BOUND = TORQUE_MAX * (1.0 - 1e-6)


def _clean(x: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(x), x, fill)


def limit_commands(cmd: MotorCommands, q_measured: np.ndarray | None, kp_max: float, kd_max: float) -> MotorCommands:
    """A safe copy of `cmd` (see the module contract)."""
    q_m = None if q_measured is None else np.asarray(q_measured, dtype=np.float64).reshape(-1)
    q_m_ok = np.zeros(12, dtype=bool) if q_m is None else np.isfinite(q_m)
    # A non-finite target falls back to the measured position (or the stand pose): no motion asked.
    q_fallback = np.where(q_m_ok, np.nan_to_num(q_m if q_m is not None else STAND_POSE), STAND_POSE)
    q = np.clip(_clean(cmd.q, q_fallback), Q_LOW, Q_HIGH)
    dq = np.clip(_clean(cmd.dq, 0.0), -VELOCITY_MAX, VELOCITY_MAX)
    kp = np.clip(_clean(cmd.kp, 0.0), 0.0, kp_max)
    kd = np.clip(_clean(cmd.kd, 0.0), 0.0, kd_max)
    tau = np.clip(_clean(cmd.tau, 0.0), -TAU_BOUND, TAU_BOUND)

    kp = np.where(q_m_ok, kp, 0.0)
    if q_m is not None:
        qm = np.where(q_m_ok, q_m, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lo = np.maximum(Q_LOW, qm + (-TAU_BOUND - tau) / kp)
            hi = np.minimum(Q_HIGH, qm + (TAU_BOUND - tau) / kp)
        stiff = kp > 0
        reachable = lo <= hi
        q = np.where(stiff & reachable, np.clip(q, lo, hi), q)
        # q_m outside the joint range by more than the torque allows: aim at the nearest limit and
        # lower kp until the position term fits.
        far = stiff & ~reachable
        if far.any():
            q_near = np.clip(qm, Q_LOW, Q_HIGH)
            d = q_near - qm
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                kp_fit = np.where(d > 0, (TAU_BOUND - tau) / d, (-TAU_BOUND - tau) / d)
            kp = np.where(far, np.clip(np.minimum(kp, kp_fit), 0.0, kp_max), kp)
            q = np.where(far, q_near, q)
    return MotorCommands(q=q, dq=dq, kp=kp, kd=kd, tau=tau, mode=cmd.mode)
