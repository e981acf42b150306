"""The MuJoCo Go2 as a robot: takes LowCmd, applies it as PD torques, reports LowState (pure, no ROS).

Behaves like the real robot where the bridge can tell: a LowCmd with a wrong CRC or head is dropped
(the previous command stays in force, as on the Go2); motor mode 0 or kp/kd with the SDK's stop
values (q = PosStopF, dq = VelStopF) disable the position / velocity terms; torques saturate at the
motor limits. LowState carries q, dq, ddq, tau_est per motor, the IMU (quaternion w-x-y-z, gyro,
accelerometer, rpy) from a site at the base centre, foot forces in newtons (the real sensor reports
raw counts), `tick` = simulated milliseconds, and its CRC (the bridge drops LowState without a valid
one). The ground-truth base pose is available separately (`base_position`, `base_rpy`) for tests; the
robot itself does not know it.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from go2_bridge.go2 import FOOT_NAMES, HEAD, LYING_POSE, MODE_STOP, NUM_MOTORS, STAND_POSE
from go2_bridge.lowcmd import lowcmd_crc
from go2_bridge.lowstate import rpy_from_quaternion
from go2_bridge.lowstate_wire import lowstate_crc
from go2_sim.model import go2_mjcf

_STOP_THRESHOLD_Q = 2.0e9  # |q| at or above this is PosStopF
_STOP_THRESHOLD_DQ = 1.5e4  # |dq| at or above this is VelStopF


class Go2Sim:
    """One simulated Go2. `start` is 'lying' (settled on the floor, motors off) or 'standing'."""

    def __init__(self, timestep: float = 0.002, start: str = "lying") -> None:
        if start not in ("lying", "standing"):
            raise ValueError(f"start must be 'lying' or 'standing', got {start!r}")
        self.model = mujoco.MjModel.from_xml_string(go2_mjcf(timestep))
        self.data = mujoco.MjData(self.model)
        self.timestep = timestep
        self._foot_geoms = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, n) for n in FOOT_NAMES]
        self._sensor = {n: self.model.sensor(n) for n in ("imu_quat", "imu_gyro", "imu_acc")}
        self.dropped_commands = 0
        self.accepted_commands = 0
        self._kp = np.zeros(NUM_MOTORS)
        self._kd = np.zeros(NUM_MOTORS)
        self._ctrl = np.zeros(NUM_MOTORS)
        self.reset(start)

    # -- state -------------------------------------------------------------------------------------
    def reset(self, start: str = "lying") -> None:
        mujoco.mj_resetData(self.model, self.data)
        pose = LYING_POSE if start == "lying" else STAND_POSE
        self.data.qpos[7:] = pose
        self.data.qpos[2] = 0.15 if start == "lying" else 0.33
        self.set_motor_commands(
            np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS), np.zeros(NUM_MOTORS)
        )
        if start == "standing":
            self.set_motor_commands(
                STAND_POSE,
                np.zeros(NUM_MOTORS),
                np.full(NUM_MOTORS, 50.0),
                np.full(NUM_MOTORS, 3.0),
                np.zeros(NUM_MOTORS),
            )
        # Let it come to rest before anyone looks (motors off when lying).
        self.step(round(1.0 / self.timestep))
        self.data.time = 0.0

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[7:].copy()

    @property
    def dq(self) -> np.ndarray:
        return self.data.qvel[6:].copy()

    @property
    def base_position(self) -> np.ndarray:
        return self.data.qpos[:3].copy()

    @property
    def base_quaternion_wxyz(self) -> np.ndarray:
        return self.data.qpos[3:7].copy()

    @property
    def base_rpy(self) -> tuple[float, float, float]:
        return rpy_from_quaternion(self.data.qpos[3:7])

    def foot_forces(self) -> np.ndarray:
        """Normal contact force on each foot [N], FR FL RR RL."""
        forces = np.zeros(4)
        wrench = np.zeros(6)
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            for k, g in enumerate(self._foot_geoms):
                if g in (c.geom1, c.geom2):
                    mujoco.mj_contactForce(self.model, self.data, i, wrench)
                    forces[k] += abs(wrench[0])
        return forces

    # -- actuation ---------------------------------------------------------------------------------
    def set_motor_commands(
        self, q: np.ndarray, dq: np.ndarray, kp: np.ndarray, kd: np.ndarray, tau: np.ndarray
    ) -> None:
        """PD law per motor: kp (q - q_m) + kd (dq - dq_m) + tau (saturated by the actuator)."""
        self._kp, self._kd = np.asarray(kp, dtype=np.float64), np.asarray(kd, dtype=np.float64)
        self._ctrl = self._kp * q + self._kd * dq + np.asarray(tau, dtype=np.float64)
        self.model.actuator_biasprm[:, 1] = -self._kp
        self.model.actuator_biasprm[:, 2] = -self._kd
        self.data.ctrl[:] = self._ctrl

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
        self.set_motor_commands(q, dq, kp, kd, tau)
        self.accepted_commands += 1
        return True

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            mujoco.mj_step(self.model, self.data)

    # -- sensing -----------------------------------------------------------------------------------
    def fill_lowstate(self, msg: Any) -> Any:
        """Write the robot's view of itself into a unitree_go/LowState (or look-alike); returns it."""
        d = self.data
        msg.head[0], msg.head[1] = HEAD
        quat = d.sensordata[self._sensor["imu_quat"].adr[0] : self._sensor["imu_quat"].adr[0] + 4]
        gyro = d.sensordata[self._sensor["imu_gyro"].adr[0] : self._sensor["imu_gyro"].adr[0] + 3]
        acc = d.sensordata[self._sensor["imu_acc"].adr[0] : self._sensor["imu_acc"].adr[0] + 3]
        imu = msg.imu_state
        imu.quaternion[:] = quat
        imu.gyroscope[:] = gyro
        imu.accelerometer[:] = acc
        imu.rpy[:] = rpy_from_quaternion(quat)
        q, dq, ddq = d.qpos[7:], d.qvel[6:], d.qacc[6:]
        tau = d.actuator_force
        for i in range(NUM_MOTORS):
            m = msg.motor_state[i]
            m.mode = 1
            m.q = m.q_raw = float(q[i])
            m.dq = m.dq_raw = float(dq[i])
            m.ddq = m.ddq_raw = float(ddq[i])
            m.tau_est = float(tau[i])
            m.temperature = 30
        msg.foot_force[:] = np.clip(np.round(self.foot_forces()), -32768, 32767).astype(np.int16)
        msg.tick = round(d.time * 1000.0) & 0xFFFFFFFF
        msg.crc = lowstate_crc(msg)  # last: over everything above, as the Go2 does (the bridge checks it)
        return msg
