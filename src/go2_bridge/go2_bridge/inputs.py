"""What the bridge does with each incoming LowState and JointTargets before the safety core decides (pure).

LowState (`LowStateInput.on_message`), in this order:
1. Its CRC (lowstate_wire) must match, as the robot's own SDK requires. A frame with a bad CRC is dropped
   and counted; `max_bad_crc_frames` in a row count as sensor loss: the core treats LowState as stale
   (SafetyCore.lowstate_lost -> DAMPING from STAND_UP/ACTIVE, stand_up/reset refused) until a valid frame.
2. The frame goes to the core, which damps (STAND_UP/ACTIVE) on non-finite q, dq, quaternion or gyro.
3. Readings that are not finite or impossible (a joint far past its stop, a degenerate quaternion) are
   reported; `publishable` says which downstream messages may carry them (never NaN/inf):
   JointState only with finite q, dq and tau_est; Imu only with a usable orientation and a finite gyro within
   `IMPLAUSIBLE_GYRO_RAD_S` (the controller needs both); a non-finite accelerometer is sent as "no estimate"
   (zeros, covariance[0] = -1, the sensor_msgs/Imu convention) so orientation keeps flowing; foot contacts are
   0/1 always.
4. The remote bytes go through ComboDetector (held combos only; see remote.py).

Every bad input is counted per kind in `InputMonitor`, which the node reports on /diagnostics as WARN
for `hold_s` after the last one (ERROR comes from the core when it damps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from go2_bridge.go2 import NUM_MOTORS, Q_MAX, Q_MIN, TORQUE_MAX, VELOCITY_MAX
from go2_bridge.lowstate import RobotState, parse_lowstate
from go2_bridge.lowstate_wire import lowstate_crc_ok
from go2_bridge.remote import ComboDetector, parse_remote
from go2_bridge.safety import JointTargetsData, SafetyCore

# A measured joint this far past its limit is not a reading but garbage (the Go2 has mechanical stops).
IMPOSSIBLE_Q_MARGIN_RAD = 0.5
# A trunk rate past a MEMS gyro's usual full scale (+-2000 deg/s = 34.9 rad/s) is a glitch, not a motion: the Imu
# message is held back (the controller would feed it to its policy and yaw trim) and the reading reported.
IMPLAUSIBLE_GYRO_RAD_S = 35.0
# Targets this far past the joint range are reported: walk-these-ways' targets stay within 2.5 rad of
# the default pose, so nothing from a working controller comes near.
TARGET_Q_REPORT_MARGIN_RAD = 3.0


@dataclass
class Fault:
    count: int = 0
    last_time: float = -np.inf
    detail: str = ""


class InputMonitor:
    """Counts bad inputs per kind; WARN while any happened within the last `hold_s`."""

    def __init__(self, hold_s: float = 2.0) -> None:
        self.hold_s = hold_s
        self.faults: dict[str, Fault] = {}
        # Kinds that started (after `hold_s` quiet) since the node last looked: it reports them at once.
        self.news: list[tuple[str, str]] = []

    def report(self, kind: str, detail: str, now: float) -> None:
        f = self.faults.setdefault(kind, Fault())
        if now - f.last_time > self.hold_s:
            self.news.append((kind, detail))
        f.count += 1
        f.last_time, f.detail = now, detail

    def active(self, now: float) -> dict[str, Fault]:
        return {k: f for k, f in self.faults.items() if now - f.last_time <= self.hold_s}

    def summary(self, now: float) -> str:
        return "; ".join(f"{k} x{f.count}: {f.detail}" for k, f in sorted(self.active(now).items()))

    def counts(self) -> dict[str, int]:
        return {k: f.count for k, f in sorted(self.faults.items())}


@dataclass(frozen=True)
class Publishable:
    joint_state: bool
    imu: bool
    accelerometer: bool  # False: publish the Imu with "no estimate" for linear acceleration


class LowStateInput:
    """CRC check, core update, reading checks and remote combos for every LowState (see module docstring)."""

    def __init__(
        self,
        core: SafetyCore,
        monitor: InputMonitor,
        combos: ComboDetector | None,
        check_crc: bool = True,
        max_bad_crc_frames: int = 10,
    ) -> None:
        if not (isinstance(max_bad_crc_frames, int) and max_bad_crc_frames >= 1):
            raise ValueError(f"max_bad_crc_frames must be an integer >= 1, got {max_bad_crc_frames!r}")
        self.core, self.monitor, self.combos = core, monitor, combos
        self.check_crc = check_crc
        self.max_bad_crc_frames = max_bad_crc_frames
        self.accepted = 0
        self.crc_errors = 0
        self.crc_run = 0  # bad frames in a row
        self.requests: list[tuple[str, bool, str]] = []  # remote requests since the node last looked

    def on_message(self, msg: Any, now: float) -> tuple[RobotState, Publishable] | None:
        """Handle one LowState; the accepted state and what may be published from it, or None if dropped."""
        try:
            if self.check_crc:
                ok, expected = lowstate_crc_ok(msg)
                if not ok:
                    self._bad_crc(int(msg.crc), expected, now)
                    return None
            state = parse_lowstate(msg)
        except Exception as err:  # malformed beyond the struct: never crash, damp
            self._drop()
            self.monitor.report("lowstate_malformed", f"{type(err).__name__}: {err}", now)
            self.core.fault(f"bad LowState: {type(err).__name__}: {err}", now)
            return None
        self.crc_run = 0
        self.accepted += 1
        self.core.on_lowstate(state, now)
        publishable = self._check_readings(state, now)
        if self.combos is not None:
            remote = parse_remote(state.wireless_remote)
            if not remote.plausible:
                self.monitor.report("remote_implausible", "stick values not finite within [-1, 1]", now)
            request = self.combos.update(remote)
            if request is not None:
                accepted, why = self.core.request(request, now)
                self.requests.append((request, accepted, why))
        return state, publishable

    def _drop(self) -> None:
        if self.combos is not None:
            self.combos.invalid()

    def _bad_crc(self, got: int, expected: int, now: float) -> None:
        self._drop()
        self.crc_errors += 1
        self.crc_run += 1
        self.monitor.report("lowstate_crc", f"crc 0x{got & 0xFFFFFFFF:08X}, expected 0x{expected:08X}", now)
        if self.crc_run >= self.max_bad_crc_frames:
            self.core.lowstate_lost(f"{self.crc_run} LowState frames in a row with a bad CRC", now)

    def _check_readings(self, state: RobotState, now: float) -> Publishable:
        bad = state.nonfinite_fields()
        problems = [f"non-finite {name}" for name in bad]
        if "quaternion_wxyz" not in bad and not state.orientation_ok:
            problems.append("degenerate quaternion")
        with np.errstate(invalid="ignore"):
            if np.any((state.q < Q_MIN - IMPOSSIBLE_Q_MARGIN_RAD) | (state.q > Q_MAX + IMPOSSIBLE_Q_MARGIN_RAD)):
                problems.append("joint position past its stop")
            if np.any(np.abs(state.dq) > 2.0 * VELOCITY_MAX):
                problems.append("joint speed over twice its limit")
            gyro_implausible = bool(np.any(np.abs(state.gyroscope) > IMPLAUSIBLE_GYRO_RAD_S))
        if gyro_implausible:
            problems.append(f"gyroscope past {IMPLAUSIBLE_GYRO_RAD_S:g} rad/s")
        if problems:
            self.monitor.report("lowstate_values", ", ".join(problems), now)
        return Publishable(
            joint_state=not {"q", "dq", "tau_est"} & set(bad),
            imu=state.orientation_ok and "gyroscope" not in bad and not gyro_implausible,
            accelerometer="accelerometer" not in bad,
        )


def check_targets(targets: JointTargetsData, kp_max: float, kd_max: float) -> list[str]:
    """What is wrong with a JointTargets (empty if nothing): wrong length, non-finite, negative gains, or
    values past the limits the bridge will clamp them to (reported, then clamped by limit_commands)."""
    problems = []
    for name, a in zip(("position", "velocity", "kp", "kd", "torque_ff"), targets.arrays(), strict=True):
        if a.shape != (NUM_MOTORS,):
            problems.append(f"{name} has {a.size} values, not {NUM_MOTORS}")
        elif not np.isfinite(a).all():
            problems.append(f"{name}[{int(np.argmax(~np.isfinite(a)))}] is not finite")
    if problems:
        return problems
    p, v, kp, kd, tau = targets.arrays()
    if np.any((p < Q_MIN - TARGET_Q_REPORT_MARGIN_RAD) | (p > Q_MAX + TARGET_Q_REPORT_MARGIN_RAD)):
        problems.append("position far outside the joint range")
    if np.any(np.abs(v) > VELOCITY_MAX):
        problems.append("velocity over the joint speed limit")
    if np.any(kp < 0) or np.any(kd < 0):
        problems.append("negative gain")
    if np.any(kp > kp_max) or np.any(kd > kd_max):
        problems.append(f"gain over kp_max {kp_max} / kd_max {kd_max}")
    if np.any(np.abs(tau) > TORQUE_MAX):
        problems.append("torque_ff over the torque limit")
    return problems
