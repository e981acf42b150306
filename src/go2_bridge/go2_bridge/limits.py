"""Clamping motor commands to what the Go2 may be sent: the last step before every LowCmd.

[Contract] For any input (NaN, inf, huge values) `limit_commands` returns finite commands, each value
exactly representable as float32 (the LowCmd carries float32: what is returned is what goes on the wire,
bit for bit), with
  Q_MIN <= q <= Q_MAX, |dq| <= VELOCITY_MAX, 0 <= kp <= kp_max, 0 <= kd <= kd_max, |tau| <= TORQUE_MAX,
and, where the measured position q_m is finite, |tau + kp (q - q_m)| <= TORQUE_MAX: the feed-forward
plus position term the motor would apply at the measured position stays within the torque limit (the
target is pulled towards q_m, or kp lowered when q_m lies outside the joint range). Where q_m is not
finite, kp is 0: without a measured position a stiffness cannot be bounded. The velocity term
kd (dq - dq_m) is bounded by kd_max and the motor's own saturation (documented in docs/robot.md).

Why float32-exact: rounding a float64 to float32 can move it up by half a float32 step, so a value
clamped to exactly 30.1 rad/s went out as 30.100000381. Every clamp bound is therefore the float32
value nearest the limit on its inside (rounding is monotonic, so anything clamped within it rounds
within it too), the results are rounded here, and the torque product is checked on the rounded values.
"""

from __future__ import annotations

import numpy as np

from go2_bridge.go2 import Q_MAX, Q_MIN, STAND_POSE, TORQUE_MAX, VELOCITY_MAX
from go2_bridge.lowcmd import MotorCommands


def f32_floor(x: np.ndarray | float) -> np.ndarray:
    """The largest float32 value <= x (x finite and within float32 range), as float64."""
    x = np.asarray(x, dtype=np.float64)
    f = x.astype(np.float32)
    f = np.where(f.astype(np.float64) > x, np.nextafter(f, np.float32(-np.inf)), f)
    return np.asarray(f, dtype=np.float64)


def f32_ceil(x: np.ndarray | float) -> np.ndarray:
    """The smallest float32 value >= x, as float64."""
    return -f32_floor(-np.asarray(x, dtype=np.float64))


def to_f32(x: np.ndarray) -> np.ndarray:
    """Round to the nearest float32 (as LowCmd's float32 fields do), returned as float64."""
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


Q_LOW = f32_ceil(Q_MIN)
Q_HIGH = f32_floor(Q_MAX)
DQ_BOUND = f32_floor(VELOCITY_MAX)
# The torque product is fitted to a bound a millionth inside the limit, so the float64 arithmetic of
# the fit (and of anyone re-checking it) cannot cross the limit itself.
TAU_FIT = TORQUE_MAX * (1.0 - 1e-6)
TAU_BOUND = f32_floor(TAU_FIT)


def _clean(x: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(x), x, fill)


def limit_commands(cmd: MotorCommands, q_measured: np.ndarray | None, kp_max: float, kd_max: float) -> MotorCommands:
    """A safe copy of `cmd` (see the module contract)."""
    kp_bound, kd_bound = float(f32_floor(kp_max)), float(f32_floor(kd_max))
    q_m = None if q_measured is None else np.asarray(q_measured, dtype=np.float64).reshape(-1)
    q_m_ok = np.zeros(12, dtype=bool) if q_m is None else np.isfinite(q_m)
    # A non-finite target falls back to the measured position (or the stand pose): no motion asked.
    q_fallback = np.where(q_m_ok, np.nan_to_num(q_m if q_m is not None else STAND_POSE), STAND_POSE)
    q = np.clip(_clean(cmd.q, q_fallback), Q_LOW, Q_HIGH)
    dq = np.clip(_clean(cmd.dq, 0.0), -DQ_BOUND, DQ_BOUND)
    kp = np.clip(_clean(cmd.kp, 0.0), 0.0, kp_bound)
    kd = np.clip(_clean(cmd.kd, 0.0), 0.0, kd_bound)
    tau = np.clip(_clean(cmd.tau, 0.0), -TAU_BOUND, TAU_BOUND)

    kp = np.where(q_m_ok, kp, 0.0)
    qm = np.where(q_m_ok, q_m, 0.0) if q_m is not None else np.zeros(12)
    if q_m is not None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lo = np.maximum(Q_LOW, qm + (-TAU_FIT - tau) / kp)
            hi = np.minimum(Q_HIGH, qm + (TAU_FIT - tau) / kp)
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
                kp_fit = np.where(d > 0, (TAU_FIT - tau) / d, (-TAU_FIT - tau) / d)
            kp = np.where(far, np.clip(np.minimum(kp, kp_fit), 0.0, kp_bound), kp)
            q = np.where(far, q_near, q)

    # Every bound above is float32-exact, so rounding keeps each value within its own limit; only the
    # product kp (q - q_m) can move by the rounding of q and kp: re-check it and lower kp where needed.
    q, dq, kp, kd, tau = (to_f32(a) for a in (q, dq, kp, kd, tau))
    kp = _fit_torque(q, kp, tau, qm, q_m_ok)
    return MotorCommands(q=q, dq=dq, kp=kp, kd=kd, tau=tau, mode=cmd.mode)


def _fit_torque(q: np.ndarray, kp: np.ndarray, tau: np.ndarray, qm: np.ndarray, q_m_ok: np.ndarray) -> np.ndarray:
    """kp (float32-exact) such that |tau + kp (q - q_m)| <= TORQUE_MAX where q_m is finite."""
    d = q - qm
    over = q_m_ok & (np.abs(tau + kp * d) > TORQUE_MAX)
    if not over.any():
        return kp
    # An excess means |kp d| > |tau|, so the torque has d's sign; aim at TAU_FIT with that sign. Lowering
    # kp only ever shrinks such an excess, and kp = 0 leaves |tau| <= TAU_BOUND.
    with np.errstate(divide="ignore", invalid="ignore"):
        kp_fit = np.where(over, (TAU_FIT - np.sign(d) * tau) / np.abs(d), kp)
    kp = np.where(over, np.minimum(kp, f32_floor(np.clip(np.nan_to_num(kp_fit), 0.0, None))), kp)
    still = q_m_ok & (np.abs(tau + kp * d) > TORQUE_MAX)
    return np.where(still, 0.0, kp)
