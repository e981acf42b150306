"""A simulated Go2 in sport mode (pure: MuJoCo + the velocity policy, no ROS): answers sport API requests the way
the Go2's own locomotion would, for the sport-mode backend's end-to-end tests.

The body is `more_sim.go2.Go2Body` (Menagerie Go2, PD motors, 15 ms torque lag). The robot's own locomotion is
played by wtw_controller's velocity backend with the bundled open walking policy, run in process at 50 Hz
(every `decimation` physics steps), fed the body's joint states and IMU like the real controller would be; it
stands in for Unitree's closed-source sport controller (it follows vx, vy, wz and nothing else).

Calls (ids from a sport_api profile; `handle` returns the status code the response carries):
- Move {"x", "y", "z"}: the velocity the policy follows, held until the next Move / StopMove (no timeout of its
  own: the worst case for a client that stops sending). 3204 if the parameter is not three finite numbers.
  Accepted (0) but not followed while the robot is not balancing (lying, damped, standing up).
- StopMove: zero velocity. Damp: kp 0, kd `damping_kd` on every joint: the robot sinks to the ground.
- StandDown: to the lying pose over `transition_s` (kp 50, kd 3), then held there. StandUp: to the stand pose,
  then held with locked joints (no walking until BalanceStand). BalanceStand: the policy takes over (from lying
  or damped it first stands up). RecoveryStand: stands up and balances.
- Euler {"x": roll, "y": pitch, "z": yaw} (1007): the trunk pitches (positive: nose down), played by the
  velocity backend's posture (wtw_controller.posture: the policy walks around a pitched default pose), clipped to
  its range [-0.3, 0.4] rad and ramped at 1 rad/s; held until the next Euler, while standing and walking. Roll
  and yaw are not followed (the posture has neither): accepted, and counted in the status as
  `euler_roll_yaw_ignored`. 3204 if the parameter is not three finite numbers.
- BodyHeight {"data": metres} (1013, only where the firmware profile offers it: `legacy`): the trunk's height
  offset from the stand, by the same posture, clipped to [-0.12, 0] m and ramped at 0.25 m/s; crouched, the walking
  speed is capped (0.3 m/s at -0.12 m). 3204 if the parameter is not one finite number.
- Euler and BodyHeight are accepted but not followed while not balancing, like Move, and Damp, StandDown, StandUp
  and RecoveryStand return the trunk to the level, full-height stand (the sport backend assumes the firmware does).
- Everything else: 3203 (RPC_ERR_SERVER_API_NOT_IMPL), what a Go2 answers to an id it does not implement
  (unitree_sdk2_python PR #76 reports 3203 for ids removed in firmware 1.1.6): gait calls (the policy only trots),
  BodyHeight on the `current` profile, unknown ids.
"""

from __future__ import annotations

import enum
import json
import math

import numpy as np

from go2_bridge.go2 import LYING_POSE
from go2_bridge.sport_api import (
    RPC_ERR_SERVER_API_NOT_IMPL,
    RPC_ERR_SERVER_API_PARAMETER,
    RPC_OK,
    SportApiConfig,
    api_config,
)
from more_common.action_contract import action_from_mapping
from more_sim.go2 import Go2Body, MotorCommand
from wtw_controller.core import Controller
from wtw_controller.posture import PostureConfig
from wtw_controller.velocity import DEFAULT_POSE_SDK, VelocityBackend, VelocityConfig

STARTS = ("standing", "lying")
SETTLE_S = 1.0  # a reset lets the robot come to rest this long
HOLD_KP, HOLD_KD = 50.0, 3.0  # joint-position hold while standing up / lying (the bridge's stand-up gains)


class Mode(enum.Enum):
    BALANCE = "BALANCE"  # the locomotion policy walks: Move / StopMove act
    TRANSITION = "TRANSITION"  # joints moving between poses (StandUp, StandDown, RecoveryStand)
    STANDING = "STANDING"  # StandUp done: stand pose held, joints locked
    LYING = "LYING"  # StandDown done: lying pose held
    DAMPED = "DAMPED"  # Damp: no stiffness, joint damping only


class SportServer:
    def __init__(
        self,
        policy,  # noqa: ANN001 - obs (45,) -> action (12,), e.g. wtw_controller.onnx_policy.OnnxPolicy()
        api: SportApiConfig | None = None,
        timestep: float = 0.002,
        actuator_lag_s: float = 0.015,
        start: str = "standing",
        transition_s: float = 1.5,
        damping_kd: float = 2.0,
        world_xml: str | None = None,
        body: Go2Body | None = None,
    ) -> None:
        """`body`: play the sport service on this body (a caller's, in the caller's world: the caller resets and
        places it and steps its physics, calling `control` every `decimation` steps); the server starts balancing
        and leaves the body as it is. None: its own body from world_xml, timestep and actuator_lag_s, started
        `start` and settled."""
        if start not in STARTS:
            raise ValueError(f"start must be one of {list(STARTS)}, got {start!r}")
        if not (math.isfinite(transition_s) and transition_s > 0 and math.isfinite(damping_kd) and damping_kd >= 0):
            raise ValueError(f"transition_s must be > 0 and damping_kd >= 0, got {transition_s}, {damping_kd}")
        self.api = api or api_config()
        own_body = body is None
        self.body = Go2Body(world_xml=world_xml, timestep=timestep, actuator_lag_s=actuator_lag_s) if own_body else body
        # the posture plays Euler and BodyHeight (explicit: it must not follow a change of VelocityConfig's default)
        self.backend = VelocityBackend(policy, VelocityConfig(posture=PostureConfig(enabled=True)))
        self.controller = Controller(self.backend, command_timeout_s=1.0, sensor_timeout_s=1.0)
        self.decimation = max(1, round(self.backend.dt / self.body.timestep))
        self.transition_s = transition_s
        self.damping_kd = damping_kd
        self.stand_pose = np.asarray(DEFAULT_POSE_SDK, dtype=np.float64)  # the policy's own default pose
        self.handled: dict[str, dict[int, int]] = {}  # call name -> {code: count}
        self.velocity = np.zeros(3)
        self.pitch = self.body_height = 0.0  # the commanded trunk attitude (Euler y, BodyHeight)
        self.euler_roll_yaw_ignored = 0
        self.mode = Mode.BALANCE
        self._steps = 0
        self._transition: tuple[np.ndarray, np.ndarray, float, Mode] | None = None  # from, to, start time, then
        if not own_body:
            self.enter_balance()
            return
        if start == "standing":
            self.body.reset(self.stand_pose)
            self.enter_balance()
        else:
            self.body.reset(LYING_POSE)
            self._damp()
        self.advance(round(SETTLE_S / self.body.timestep))

    @property
    def time(self) -> float:
        return self.body.time

    # -- requests --------------------------------------------------------------------------------------------
    def handle(self, api_id: int, parameter: str) -> int:
        """Apply one request now; the status code of its response."""
        name = self.api.name_of(api_id)
        code = self._apply(name, parameter)
        counts = self.handled.setdefault(name, {})
        counts[code] = counts.get(code, 0) + 1
        return code

    def _apply(self, name: str, parameter: str) -> int:
        if name == "move":
            velocity = _numbers(parameter, ("x", "y", "z"))
            if velocity is None:
                return RPC_ERR_SERVER_API_PARAMETER
            if self.mode is Mode.BALANCE:
                self.velocity = velocity
            return RPC_OK
        if name == "euler":
            angles = _numbers(parameter, ("x", "y", "z"))
            if angles is None:
                return RPC_ERR_SERVER_API_PARAMETER
            if self.mode is Mode.BALANCE:
                roll, self.pitch, yaw = (float(v) for v in angles)
                self.euler_roll_yaw_ignored += roll != 0.0 or yaw != 0.0
            return RPC_OK
        if name == "body_height":
            height = _numbers(parameter, ("data",))
            if height is None:
                return RPC_ERR_SERVER_API_PARAMETER
            if self.mode is Mode.BALANCE:
                self.body_height = float(height[0])
            return RPC_OK
        if name == "stop_move":
            self.velocity = np.zeros(3)
            return RPC_OK
        if name == "damp":
            self._damp()
            return RPC_OK
        if name == "stand_down":
            self._move_joints(LYING_POSE, Mode.LYING)
            return RPC_OK
        if name == "stand_up":
            self._move_joints(self.stand_pose, Mode.STANDING)
            return RPC_OK
        if name == "balance_stand":
            if self.mode is Mode.STANDING:
                self.enter_balance()
            elif self.mode in (Mode.LYING, Mode.DAMPED) or (
                self._transition is not None and self._transition[3] is not Mode.BALANCE
            ):
                self._move_joints(self.stand_pose, Mode.BALANCE)
            return RPC_OK
        if name == "recovery_stand":
            self._move_joints(self.stand_pose, Mode.BALANCE)
            return RPC_OK
        return RPC_ERR_SERVER_API_NOT_IMPL

    def enter_balance(self) -> None:
        """The locomotion policy takes over where the body stands: no velocity, the level stand, a fresh controller."""
        self.mode, self._transition = Mode.BALANCE, None
        self.velocity = np.zeros(3)
        self.pitch = self.body_height = 0.0
        self.controller.reset()

    def _damp(self) -> None:
        self.mode, self._transition = Mode.DAMPED, None
        self.velocity = np.zeros(3)
        self.pitch = self.body_height = 0.0
        self.body.set_command(MotorCommand(kd=np.full(12, self.damping_kd)))

    def _move_joints(self, target: np.ndarray, then: Mode) -> None:
        self.velocity = np.zeros(3)
        self.pitch = self.body_height = 0.0
        self.mode = Mode.TRANSITION
        self._transition = (self.body.q, np.asarray(target, dtype=np.float64), self.time, then)

    # -- physics ---------------------------------------------------------------------------------------------
    def advance(self, n: int) -> None:
        """`n` physics steps; the locomotion policy (or the pose interpolation) runs every `decimation` steps."""
        for _ in range(n):
            if self._steps % self.decimation == 0:
                self.control()
            self.body.step(1)
            self._steps += 1

    def control(self) -> None:
        """One step of the robot's own control (50 Hz): a pose transition, a held command, or the locomotion
        policy on the body's sensors following the velocity and posture last asked for."""
        b, now = self.body, self.time
        if self.mode is Mode.TRANSITION:
            start, target, t0, then = self._transition
            s = min(1.0, (now - t0) / self.transition_s)
            ease = 0.5 - 0.5 * math.cos(math.pi * s)  # zero speed at both ends
            b.set_command(MotorCommand.pd(start + (target - start) * ease, kp=HOLD_KP, kd=HOLD_KD))
            if s >= 1.0:
                if then is Mode.BALANCE:
                    self.enter_balance()
                else:
                    self.mode, self._transition = then, None
            return
        if self.mode is not Mode.BALANCE:
            return  # the held command (pose hold, damping) stays in force
        w, x, y, z = b.imu_quaternion_wxyz
        self.controller.on_joint_state(b.q, b.dq, now)
        self.controller.on_imu(np.array([x, y, z, w]), now, b.gyroscope)
        vx, vy, wz = (float(v) for v in self.velocity)
        command = {"vx": vx, "vy": vy, "wz": wz, "pitch": self.pitch, "body_height": self.body_height}
        self.controller.on_command(action_from_mapping(command), now)
        r = self.controller.step(now)
        if r.targets is None:  # cannot happen in process (fresh sensors); if it does, fall back to damping
            self._damp()
            return
        k = self.backend
        b.set_command(MotorCommand(q=r.targets, tau=r.torque_ff, kp=np.full(12, k.kp), kd=np.full(12, k.kd)))

    def status(self) -> dict[str, object]:
        posture = self.backend.posture
        out: dict[str, object] = {
            "mode": self.mode.value,
            "sim_time_s": self.time,
            "velocity_command": ",".join(f"{v:.3f}" for v in self.velocity),
            "trunk_height_m": float(self.body.base_position[2]),
            "posture_command": f"pitch {self.pitch:.3f} rad, body_height {self.body_height:.3f} m",
            "posture": f"pitch {posture.pitch:.3f} rad, body_height {posture.body_height:.3f} m",  # clipped, ramped
            "euler_roll_yaw_ignored": str(self.euler_roll_yaw_ignored),
        }
        for name, codes in sorted(self.handled.items()):
            out[f"handled.{name}"] = ", ".join(f"code {c}: {n}" for c, n in sorted(codes.items()))
        return out


def _numbers(parameter: str, keys: tuple[str, ...]) -> np.ndarray | None:
    """The finite numbers under `keys` of a JSON object (Move's {"x", "y", "z"}), or None if it is not that."""
    try:
        data = json.loads(parameter)
        values = [data[k] for k in keys]
    except (ValueError, TypeError, KeyError):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return np.asarray(values, dtype=np.float64)
