"""The controller's decisions, ROS-free: sensors + command in, joint targets out, with watchdogs.

One core for every locomotion backend (backend.py: walk-these-ways, velocity). Watchdogs, checked every step:
- no joint state or IMU within `sensor_timeout_s` (or a non-finite / degenerate reading, or a gyro past
  `GYRO_PLAUSIBLE_RAD_S`): no targets at all, and the backend is reset (history, actions, filters). The bridge,
  missing targets, damps. (One glitched sample costs one step; without the gyro check it would pin the velocity
  backend's yaw trim at its limit and turn a standing robot for seconds.)
- no command within `command_timeout_s`, an invalid command, or terminate: the backend's stand command
  (zero velocity, in place); targets keep flowing.
- the policy answers NaN/inf: no targets, backend reset.
Targets beyond the joint range go out as the range's end plus the equivalent feed-forward torque (limits.py).
With a `StaleStateGuard` (state_age.py), the command's vx and vy are capped while its owner judges the joint state
stale (its age is measured by the owner: the node from the bridge's stamps, the in-process walker from the physics).
`max_speed` > 0 caps |vx| and |vy| always and `max_yaw_rate` > 0 caps |wz| always (a deployment's limits, whichever
backend; command_limits.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wtw_controller.backend import Backend, NonFiniteActionError, Sensors
from wtw_controller.command_limits import cap_speed, cap_yaw_rate
from wtw_controller.config import WtwConfig
from wtw_controller.limits import split_targets
from wtw_controller.state_age import StaleStateGuard
from wtw_controller.wtw_backend import Policy, WtwBackend

# No trotting quadruped's trunk turns this fast (a MEMS gyro's usual full scale is +-2000 deg/s = 34.9 rad/s): a
# reading past it is a glitch, not a motion, and must not reach the policy or the yaw trim's filter.
GYRO_PLAUSIBLE_RAD_S = 35.0


@dataclass
class StepResult:
    targets: np.ndarray | None  # (12,) SDK order, or None: publish nothing
    status: str  # 'ok' or why not / what was substituted
    commands: np.ndarray  # the backend's command used (walk-these-ways: 15 values; velocity: vx, vy, wz)
    observation: np.ndarray | None
    action: np.ndarray | None
    torque_ff: np.ndarray | None = None  # (12,) [Nm] what the targets' clip into the joint range took away

    @property
    def invalid_input(self) -> bool:
        """The command was rejected (the node reports this as an error)."""
        return self.status.startswith("invalid")


class Controller:
    def __init__(
        self, backend: Backend, command_timeout_s: float = 0.5, sensor_timeout_s: float = 0.1,
        stale_guard: StaleStateGuard | None = None, max_speed: float = 0.0, max_yaw_rate: float = 0.0,
    ) -> None:  # fmt: skip
        if not (command_timeout_s > 0 and sensor_timeout_s > 0):
            raise ValueError("timeouts must be > 0")
        for name, limit in (("max_speed", max_speed), ("max_yaw_rate", max_yaw_rate)):
            if not (math.isfinite(limit) and limit >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {limit!r}")
        self.backend = backend
        self.stale_guard = stale_guard
        self.max_speed = max_speed
        self.max_yaw_rate = max_yaw_rate
        self.command_timeout_s = command_timeout_s
        self.sensor_timeout_s = sensor_timeout_s
        self._q = self._dq = None
        self._q_time = -math.inf
        self._quat: np.ndarray | None = None
        self._gyro = np.zeros(3)
        self._imu_time = -math.inf
        self._command: np.ndarray | None = None
        self._command_time = -math.inf

    def reset(self) -> None:
        self.backend.reset()

    def on_joint_state(self, q_sdk: np.ndarray, dq_sdk: np.ndarray, now: float) -> None:
        self._q, self._dq = np.asarray(q_sdk, float).reshape(12), np.asarray(dq_sdk, float).reshape(12)
        self._q_time = now

    def on_imu(self, quaternion_xyzw: np.ndarray, now: float, angular_velocity: np.ndarray | None = None) -> None:
        """Orientation (x, y, z, w) and, if given, the gyro [rad/s, trunk frame] (else zero)."""
        q = np.asarray(quaternion_xyzw, dtype=np.float64).reshape(4)
        n = float(np.linalg.norm(q))
        # degenerate: treated as missing until a good one arrives
        self._quat = q / n if math.isfinite(n) and n > 1e-9 else None
        self._gyro = np.zeros(3) if angular_velocity is None else np.asarray(angular_velocity, float).reshape(3)
        self._imu_time = now

    def on_command(self, action12: np.ndarray, now: float) -> None:
        self._command = np.asarray(action12, dtype=np.float64)
        self._command_time = now

    def fresh_command(self, now: float) -> np.ndarray | None:
        fresh = self._command is not None and now - self._command_time <= self.command_timeout_s
        return self._command if fresh else None

    def sensor_problem(self, now: float) -> str | None:
        if self._q is None or now - self._q_time > self.sensor_timeout_s:
            return "joint states missing or stale"
        if self._quat is None or now - self._imu_time > self.sensor_timeout_s:
            return "IMU missing, stale or degenerate"
        if not (np.isfinite(self._q).all() and np.isfinite(self._dq).all() and np.isfinite(self._gyro).all()):
            return "non-finite sensor values"
        fastest = float(np.max(np.abs(self._gyro)))
        if fastest > GYRO_PLAUSIBLE_RAD_S:
            return f"implausible gyro reading ({fastest:.3g} rad/s > {GYRO_PLAUSIBLE_RAD_S:g})"
        return None

    def step(self, now: float) -> StepResult:
        command = cap_yaw_rate(cap_speed(self.fresh_command(now), self.max_speed), self.max_yaw_rate)
        if self.stale_guard is not None:
            command = self.stale_guard.cap(command)
        commands, how = self.backend.map_command(command)
        status = "ok" if how == "ok" else ("command timeout: standing" if how == "none" else f"{how}: standing")
        problem = self.sensor_problem(now)
        if problem is not None:
            self.backend.reset()
            return StepResult(None, problem, commands, None, None)
        sensors = Sensors(self._q, self._dq, self._quat, self._gyro)
        try:
            out = self.backend.step(sensors, commands)
        except NonFiniteActionError as err:
            self.backend.reset()
            return StepResult(None, str(err), commands, None, None)
        targets, torque_ff = split_targets(out.targets, self.backend.kp)
        return StepResult(targets, status, commands, out.observation, out.action, torque_ff)


class WtwController(Controller):
    """The controller with the walk-these-ways backend (its history, clock and actions exposed for tests)."""

    def __init__(
        self, policy: Policy, config: WtwConfig | None = None, command_timeout_s: float = 0.5,
        sensor_timeout_s: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__(WtwBackend(policy, config), command_timeout_s, sensor_timeout_s)
        self.config = self.backend.config
        self.mapper = self.backend.mapper

    @property
    def history(self):  # noqa: ANN201
        return self.backend.history

    @property
    def clock(self):  # noqa: ANN201
        return self.backend.clock

    @property
    def action(self) -> np.ndarray:
        return self.backend.action
