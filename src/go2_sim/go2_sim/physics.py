"""The MuJoCo Go2 as a robot: takes LowCmd, applies it as PD torques, reports LowState (pure, no ROS).

The body is `more_sim.go2.Go2Body`: MuJoCo Menagerie's Go2 with PD motors and a 15 ms first-order torque lag.
This class makes it talk like the real robot where the bridge can tell: a LowCmd with a wrong CRC or head is
dropped (the previous command stays in force, as on the Go2); motor mode 0, or q / dq at the SDK's stop values
(PosStopF, VelStopF), disable the position / velocity terms; a non-finite entry turns that motor off; torques
saturate at the motor limits (in the body). LowState (`fill_lowstate`, the one place it is written) carries
q, dq, ddq and the applied torque per motor, the IMU (quaternion w-x-y-z, gyro, accelerometer, rpy) from
Menagerie's IMU site, foot forces in newtons (the real sensor reports raw counts) and `tick` = simulated
milliseconds, and its CRC (the bridge drops LowState without a valid one). The ground-truth base pose is
available separately (`base_position`, `base_rpy`) for tests; the robot itself does not know it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from go2_bridge.go2 import HEAD, LYING_POSE, MODE_STOP, NUM_MOTORS, STAND_POSE
from go2_bridge.lowcmd import lowcmd_crc
from go2_bridge.lowstate import rpy_from_quaternion
from go2_bridge.lowstate_wire import lowstate_crc
from more_sim.go2 import Go2Body, MotorCommand

_STOP_THRESHOLD_Q = 2.0e9  # |q| at or above this is PosStopF
_STOP_THRESHOLD_DQ = 1.5e4  # |dq| at or above this is VelStopF
SETTLE_S = 1.0  # a reset lets the robot come to rest this long before anyone looks
STARTS = ("lying", "standing")


class MotorAudit:
    """What a motor driver would have had to clip, and whether the bridge kept its torque promise.

    Counts accepted LowCmds whose targets lie outside the joint range (motors with kp > 0) or whose feed-forward
    torque exceeds the motor limit. The bridge promises |tau + kp (q - q_m)| <= limit at the q_m of the LowState
    it last heard; that is one of the LowStates published lately, so each LowCmd is checked against the recent
    ones (`HISTORY`) and the smallest excess over the limit counts. `worst_pd_excess` is the largest such excess
    over all LowCmds [Nm] (<= 0: the promise held for every one)."""

    HISTORY = 64  # LowStates (128 ms at 500 Hz): older than any LowState the bridge may still act on

    def __init__(self, q_min: np.ndarray, q_max: np.ndarray, torque_max: np.ndarray) -> None:
        self.q_min, self.q_max, self.torque_max = q_min, q_max, torque_max
        self.q_outside = 0
        self.tau_outside = 0
        self.worst_pd_excess = -float("inf")
        self._published = np.full((self.HISTORY, len(q_min)), np.nan)
        self._next = 0

    def note_published(self, q: np.ndarray) -> None:
        """The joint positions of a LowState just sent (as float32, as the message carries them)."""
        self._published[self._next % self.HISTORY] = np.asarray(q, dtype=np.float32)
        self._next += 1

    def check(self, q: np.ndarray, kp: np.ndarray, tau: np.ndarray) -> None:
        stiff = kp > 0
        if (stiff & ((q < self.q_min) | (q > self.q_max))).any():
            self.q_outside += 1
        if (np.abs(tau) > self.torque_max).any():
            self.tau_outside += 1
        seen = self._published[: min(self._next, self.HISTORY)]
        if len(seen):
            excess = np.max(np.abs(tau + kp * (q - seen)) - self.torque_max, axis=1)
            self.worst_pd_excess = max(self.worst_pd_excess, float(excess.min()))

    def values(self) -> dict[str, object]:
        return {
            "lowcmd_q_outside_limits": self.q_outside,
            "lowcmd_tau_outside_limits": self.tau_outside,
            "lowcmd_worst_pd_excess_nm": self.worst_pd_excess,
        }


class Go2Sim:
    """One simulated Go2. `start` is 'lying' (settled on the floor, motors off) or 'standing' (held, kp 50)."""

    def __init__(
        self, timestep: float = 0.002, start: str = "lying", actuator_lag_s: float = 0.015,
        world_xml: str | None = None, body: Go2Body | None = None,
    ) -> None:  # fmt: skip
        """`body`: a Go2 already built into a world (the six-task world node's); else one on `world_xml`."""
        if start not in STARTS:
            raise ValueError(f"start must be 'lying' or 'standing', got {start!r}")
        self.body = body or Go2Body(world_xml=world_xml, timestep=timestep, actuator_lag_s=actuator_lag_s)
        self.model, self.data = self.body.model, self.body.data
        self.timestep = self.body.timestep
        self.dropped_commands = 0
        self.accepted_commands = 0
        self.audit = MotorAudit(self.body.q_min, self.body.q_max, self.body.torque_max)
        self.reset(start)

    # -- state -------------------------------------------------------------------------------------
    def reset(self, start: str = "lying") -> None:
        if start not in STARTS:
            raise ValueError(f"start must be 'lying' or 'standing', got {start!r}")
        self.body.reset(LYING_POSE if start == "lying" else STAND_POSE)
        if start == "standing":
            self.body.set_command(MotorCommand.pd(STAND_POSE, kp=50.0, kd=3.0))
        self.body.step(round(SETTLE_S / self.timestep))
        self.data.time = 0.0

    @property
    def time(self) -> float:
        return self.body.time

    @property
    def q(self) -> np.ndarray:
        return self.body.q

    @property
    def dq(self) -> np.ndarray:
        return self.body.dq

    @property
    def command(self) -> MotorCommand:
        """What the motors were last told (after the stop values and non-finite entries were applied)."""
        return self.body.command

    @property
    def base_position(self) -> np.ndarray:
        return self.body.base_position

    @property
    def base_quaternion_wxyz(self) -> np.ndarray:
        return self.body.base_quaternion_wxyz

    @property
    def base_rpy(self) -> tuple[float, float, float]:
        return self.body.base_rpy()

    def foot_forces(self) -> np.ndarray:
        """Normal contact force on each foot [N], FR FL RR RL."""
        return self.body.foot_forces()

    def push(self, linear: tuple[float, float, float], angular: tuple[float, float, float]) -> None:
        """A shove (see Go2Body.push)."""
        self.body.push(linear, angular)

    # -- actuation ---------------------------------------------------------------------------------
    def set_motor_commands(
        self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray, kd: np.ndarray, tau: np.ndarray
    ) -> None:
        """PD law per motor: kp (q - q_m) + kd (dq - dq_m) + tau (saturated at the motor limits)."""
        self.body.set_command(MotorCommand(q=q, dq=dq, kp=kp, kd=kd, tau=tau))

    def apply_lowcmd(self, cmd: Any) -> bool:
        """Apply a unitree_go/LowCmd (or look-alike). Returns False (and keeps the last one) if rejected."""
        if tuple(int(h) for h in cmd.head) != HEAD or int(cmd.crc) != lowcmd_crc(cmd):
            self.dropped_commands += 1
            return False
        ms = cmd.motor_cmd[:NUM_MOTORS]
        mode = np.fromiter((m.mode for m in ms), dtype=np.int64, count=NUM_MOTORS)
        q = np.fromiter((m.q for m in ms), dtype=np.float64, count=NUM_MOTORS)
        dq = np.fromiter((m.dq for m in ms), dtype=np.float64, count=NUM_MOTORS)
        kp = np.fromiter((m.kp for m in ms), dtype=np.float64, count=NUM_MOTORS)
        kd = np.fromiter((m.kd for m in ms), dtype=np.float64, count=NUM_MOTORS)
        tau = np.fromiter((m.tau for m in ms), dtype=np.float64, count=NUM_MOTORS)
        on = mode != MODE_STOP
        kp = np.where(on & (np.abs(q) < _STOP_THRESHOLD_Q), kp, 0.0)
        kd = np.where(on & (np.abs(dq) < _STOP_THRESHOLD_DQ), kd, 0.0)
        q = np.where(kp > 0, q, 0.0)
        dq = np.where(kd > 0, dq, 0.0)
        tau = np.where(on, tau, 0.0)
        # A real motor cannot be given NaN; treat a non-finite command as off for that motor.
        bad = ~(np.isfinite(q) & np.isfinite(dq) & np.isfinite(kp) & np.isfinite(kd) & np.isfinite(tau))
        kp, kd, tau = np.where(bad, 0.0, kp), np.where(bad, 0.0, kd), np.where(bad, 0.0, tau)
        q, dq = np.where(bad, 0.0, q), np.where(bad, 0.0, dq)
        self.audit.check(q, kp, tau)
        self.set_motor_commands(q, dq, kp, kd, tau)
        self.accepted_commands += 1
        return True

    def step(self, n: int = 1) -> None:
        self.body.step(n)

    # -- sensing -----------------------------------------------------------------------------------
    def fill_lowstate(self, msg: Any) -> Any:
        """Write the robot's view of itself into a unitree_go/LowState (or look-alike); returns it.

        The one function that fills LowState (a LowState CRC, where wanted, is computed at its end)."""
        b = self.body
        msg.head[0], msg.head[1] = HEAD
        quat = b.imu_quaternion_wxyz
        imu = msg.imu_state
        imu.quaternion[:] = quat
        imu.gyroscope[:] = b.gyroscope
        imu.accelerometer[:] = b.accelerometer
        imu.rpy[:] = rpy_from_quaternion(quat)
        q, dq, ddq, tau = b.q, b.dq, b.ddq, b.applied
        self.audit.note_published(q)
        for i in range(NUM_MOTORS):
            m = msg.motor_state[i]
            m.mode = 1
            m.q = m.q_raw = float(q[i])
            m.dq = m.dq_raw = float(dq[i])
            m.ddq = m.ddq_raw = float(ddq[i])
            m.tau_est = float(tau[i])
            m.temperature = 30
        msg.foot_force[:] = np.clip(np.round(b.foot_forces()), -32768, 32767).astype(np.int16)
        msg.tick = round(b.time * 1000.0) & 0xFFFFFFFF
        msg.crc = lowstate_crc(msg)  # last: over everything above, as the Go2 does (the bridge checks it)
        return msg
