"""The velocity backend: a legged-gym / robot_lab velocity-tracking policy (ONNX), by default the bundled open one.

Follows vx, vy, wz (clipped to `ranges`) and terminate (-> stand); body height and pitch by moving the pose the
policy walks around (`posture`, posture.py; on in `VelocityConfig` by default, which the in-process simulator uses;
the node's parameter `posture` sets it and is off by default). No other
command dim is an input of such a policy (gait, step frequency, stance width, footswing height are reported, not
done).

Per step (50 Hz), in SDK joint order FR, FL, RR, RL x (hip, thigh, calf):
    observation (45, clipped to +-clip_obs) = gyro x 0.25 (3), projected gravity R^T (0, 0, -1) (3),
        command vx, vy, wz (3), q - default (12), dq x 0.05 (12), last action (12)
    action (clipped to +-clip_actions) -> q_des = default + action x (0.125, 0.25, 0.25) per leg; PD kp 20, kd 0.5
    default pose (0, 0.8, -1.5) per leg.
With posture, `default` above is the posture's pose and the projected gravity is the one the trunk would
measure without the posture's pitch.

Between the command and the policy, for a measured reason (docs/robot.md has the numbers):
- yaw-rate trim: the bundled policy turns on its own (0.13 rad/s with a zero command, on the MuJoCo Menagerie
  Go2) and answers small wz commands with turns the other way. An integral trim on the yaw rate removes that:
  trim += ki (wz_cmd - wz_filtered) dt, clipped to +-yaw_trim_limit, added to the wz the policy sees; wz is the
  world-frame yaw rate from the IMU (gyro rotated by the orientation: -g . gyro), low-passed with
  `yaw_trim_filter_s`. Command steps go to the policy as they come: steps between the range ends (1 m/s
  forward to 1 m/s back, 1 rad/s left to right) tilt the trunk by at most 0.2 rad with or without an
  acceleration limit, so there is none. There is no trim on vx, vy: the robot has no measurement of its own
  velocity (LowState carries none), and a leg-odometry estimate was biased by 0.1-0.2 m/s (see docs/robot.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from more_common.action_contract import DEFAULT_HIGH, DEFAULT_LOW, INDEX, TERMINATE, ActionSpec, InvalidActionError
from more_common.typed_config import build, load_yaml
from wtw_controller.backend import BackendStep, NonFiniteActionError, Sensors
from wtw_controller.observation import gravity_from_quaternion
from wtw_controller.posture import Posture, PostureConfig, level_gravity, posture_pose

OBS_DIM = 45
DEFAULT_POSE_SDK: tuple[float, ...] = (0.0, 0.8, -1.5) * 4
ACTION_SCALE_SDK: tuple[float, ...] = (0.125, 0.25, 0.25) * 4
VELOCITY_DIMS = ("vx", "vy", "wz")
POSTURE_DIMS = ("body_height", "pitch")


def _range(low: float, high: float) -> tuple[float, float]:
    return (low, high)


@dataclass(frozen=True)
class VelocityRanges:
    """Commands are clipped into these (the bundled policy walks upright within them, docs/robot.md)."""

    vx: tuple[float, float] = _range(-1.0, 1.0)
    vy: tuple[float, float] = _range(-0.5, 0.5)
    wz: tuple[float, float] = _range(-1.0, 1.0)

    def __post_init__(self) -> None:
        for name, (lo, hi) in vars(self).items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0.0 <= hi and lo < hi):
                raise ValueError(f"ranges.{name} must be finite with low <= 0 <= high, low < high, got [{lo}, {hi}]")


@dataclass(frozen=True)
class VelocityConfig:
    ranges: VelocityRanges = field(default_factory=VelocityRanges)
    posture: PostureConfig = field(default_factory=PostureConfig)
    default_pose: tuple[float, ...] = DEFAULT_POSE_SDK
    action_scale: tuple[float, ...] = ACTION_SCALE_SDK
    ang_vel_scale: float = 0.25
    dof_pos_scale: float = 1.0
    dof_vel_scale: float = 0.05
    clip_obs: float = 100.0
    clip_actions: float = 100.0
    kp: float = 20.0
    kd: float = 0.5
    dt: float = 0.02
    yaw_trim: bool = True
    yaw_trim_gain: float = 2.0  # [1/s]
    yaw_trim_filter_s: float = 0.3
    yaw_trim_limit: float = 0.6  # [rad/s]

    def __post_init__(self) -> None:
        for name in ("default_pose", "action_scale"):
            if len(getattr(self, name)) != 12:
                raise ValueError(f"{name} needs 12 values (SDK order), got {len(getattr(self, name))}")
        for name in ("ang_vel_scale", "dof_vel_scale", "clip_obs", "clip_actions", "kp", "dt", "yaw_trim_filter_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
        for name in ("dof_pos_scale", "kd", "yaw_trim_gain", "yaw_trim_limit"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}")
        if self.posture.enabled:  # the step must never meet an unreachable posture: check the ranges' corners
            for h in self.posture.body_height:
                for p in self.posture.pitch:
                    try:
                        posture_pose(np.asarray(self.default_pose, dtype=np.float64), h, p)
                    except ValueError as err:
                        raise ValueError(f"posture body height {h} m with pitch {p} rad: {err}") from None


def load_velocity_config(path: str | Path | None) -> VelocityConfig:
    """Defaults, overridden by a YAML mapping at `path` (if given)."""
    return VelocityConfig() if not path else build(VelocityConfig, load_yaml(path))


def velocity_spec(ranges: VelocityRanges, posture: PostureConfig | None = None) -> ActionSpec:
    """The contract's bounds with the followed dims narrowed to what this backend does (clipping is reported)."""
    low, high = list(DEFAULT_LOW), list(DEFAULT_HIGH)
    for name in VELOCITY_DIMS:
        low[INDEX[name]], high[INDEX[name]] = getattr(ranges, name)
    if posture is not None and posture.enabled:
        for name in POSTURE_DIMS:
            lo, hi = getattr(posture, name)
            low[INDEX[name]], high[INDEX[name]] = max(lo, DEFAULT_LOW[INDEX[name]]), min(hi, DEFAULT_HIGH[INDEX[name]])
    return ActionSpec(low=tuple(low), high=tuple(high))


class VelocityBackend:
    name = "velocity"

    def __init__(self, policy, config: VelocityConfig | None = None) -> None:  # noqa: ANN001 - obs -> action
        self.policy = policy
        self.config = c = config or VelocityConfig()
        self.kp, self.kd, self.dt = c.kp, c.kd, c.dt
        self.spec = velocity_spec(c.ranges, c.posture)
        self._default = np.asarray(c.default_pose, dtype=np.float64)
        self._scale = np.asarray(c.action_scale, dtype=np.float64)
        self._filter = c.dt / (c.yaw_trim_filter_s + c.dt)
        dims = (*VELOCITY_DIMS, *POSTURE_DIMS) if c.posture.enabled else VELOCITY_DIMS
        self.followed: tuple[str, ...] = (*dims, "terminate")
        self._index = [INDEX[n] for n in dims]
        self.posture = Posture(c.posture, self._default) if c.posture.enabled else None
        self.reset()

    def reset(self) -> None:
        self.last_action = np.zeros(12)
        self.yaw_rate = 0.0  # filtered
        self.trim = 0.0
        if self.posture is not None:
            self.posture.reset()

    def map_command(self, action: np.ndarray | None) -> tuple[np.ndarray, str]:
        """(vx, vy, wz[, body_height, pitch]) and what happened; no command or terminate: stand (nominal posture)."""
        stand = np.zeros(len(self._index))
        if action is None:
            return stand, "none"
        try:
            a = self.spec.for_controller(action)
        except InvalidActionError as err:
            return stand, f"invalid: {err}"
        if a[TERMINATE] >= 0.5:
            return stand, "terminate"
        return a[self._index].copy(), "ok"

    def step(self, sensors: Sensors, command: np.ndarray) -> BackendStep:
        c = self.config
        x, y, z, w = (float(v) for v in sensors.quaternion_xyzw)
        gravity = gravity_from_quaternion(x, y, z, w)
        command = np.asarray(command, dtype=np.float64).reshape(len(self._index))
        policy_command = command[:3].copy()
        if c.yaw_trim:
            # world yaw rate = e_z . (R gyro) = (R^T e_z) . gyro, and R^T e_z = -gravity
            yaw_rate = -float(gravity @ sensors.gyro)
            self.yaw_rate += self._filter * (yaw_rate - self.yaw_rate)
            step = c.yaw_trim_gain * (policy_command[2] - self.yaw_rate) * c.dt
            self.trim = float(np.clip(self.trim + step, -c.yaw_trim_limit, c.yaw_trim_limit))
            policy_command[2] += self.trim
        default = self._default
        if self.posture is not None:
            speed, cap = math.hypot(*policy_command[:2]), self.posture.speed_limit(command[3])
            if speed > cap:
                policy_command[:2] *= cap / speed
            default = self.posture.step(command[3], command[4], c.dt)
            gravity = level_gravity(gravity, self.posture.pitch)
        obs = np.concatenate(
            [
                sensors.gyro * c.ang_vel_scale,
                gravity,
                policy_command,
                (sensors.q - default) * c.dof_pos_scale,
                sensors.dq * c.dof_vel_scale,
                self.last_action,
            ]
        )
        obs = np.clip(obs, -c.clip_obs, c.clip_obs)
        raw = np.asarray(self.policy(obs), dtype=np.float64).reshape(12)
        if not np.isfinite(raw).all():
            raise NonFiniteActionError("policy returned non-finite actions")
        self.last_action = np.clip(raw, -c.clip_actions, c.clip_actions)
        return BackendStep(default + self.last_action * self._scale, obs, self.last_action)
