"""The controller's decisions, ROS-free: sensors + command in, joint targets out, with watchdogs.

Watchdogs (checked every step):
- no joint state or IMU within `sensor_timeout_s` (or a non-finite / degenerate reading): no targets
  at all, and the history, actions and clock are reset. The bridge, missing targets, damps.
- no command within `command_timeout_s`, an invalid command, or terminate: the stand command
  (zero velocity, in place); targets keep flowing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from wtw_controller.actions import action_to_targets
from wtw_controller.commands import CommandMapper
from wtw_controller.config import WtwConfig
from wtw_controller.joint_order import sdk_to_policy
from wtw_controller.observation import (
    OBS_DIM,
    GaitClock,
    ObservationHistory,
    build_observation,
    gravity_from_quaternion,
)

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class StepResult:
    targets: np.ndarray | None  # (12,) SDK order, or None: publish nothing
    status: str  # 'ok' or why not / what was substituted
    commands: np.ndarray  # the 15 walk-these-ways commands used
    observation: np.ndarray | None
    action: np.ndarray | None


class WtwController:
    def __init__(
        self, policy: Policy, config: WtwConfig | None = None, command_timeout_s: float = 0.5,
        sensor_timeout_s: float = 0.1,
    ) -> None:  # fmt: skip
        if not (command_timeout_s > 0 and sensor_timeout_s > 0):
            raise ValueError("timeouts must be > 0")
        self.policy = policy
        self.config = config or WtwConfig()
        self.mapper = CommandMapper(self.config)
        self.command_timeout_s = command_timeout_s
        self.sensor_timeout_s = sensor_timeout_s
        self.history = ObservationHistory(self.config.history_length, OBS_DIM)
        self.clock = GaitClock()
        self._q = self._dq = None
        self._q_time = -math.inf
        self._gravity = None
        self._imu_time = -math.inf
        self._command: np.ndarray | None = None
        self._command_time = -math.inf
        self.reset()

    def reset(self) -> None:
        self.history.reset()
        self.clock.reset()
        self.action = np.zeros(12)
        self.last_action = np.zeros(12)

    def on_joint_state(self, q_sdk: np.ndarray, dq_sdk: np.ndarray, now: float) -> None:
        self._q, self._dq = sdk_to_policy(np.asarray(q_sdk, float)), sdk_to_policy(np.asarray(dq_sdk, float))
        self._q_time = now

    def on_imu(self, quaternion_xyzw: np.ndarray, now: float) -> None:
        try:
            self._gravity = gravity_from_quaternion(*(float(v) for v in quaternion_xyzw))
        except ValueError:
            self._gravity = None  # degenerate: treated as missing until a good one arrives
        self._imu_time = now

    def on_command(self, action12: np.ndarray, now: float) -> None:
        self._command = np.asarray(action12, dtype=np.float64)
        self._command_time = now

    def sensor_problem(self, now: float) -> str | None:
        if self._q is None or now - self._q_time > self.sensor_timeout_s:
            return "joint states missing or stale"
        if self._gravity is None or now - self._imu_time > self.sensor_timeout_s:
            return "IMU missing, stale or degenerate"
        if not (np.isfinite(self._q).all() and np.isfinite(self._dq).all() and np.isfinite(self._gravity).all()):
            return "non-finite sensor values"
        return None

    def step(self, now: float) -> StepResult:
        fresh = self._command is not None and now - self._command_time <= self.command_timeout_s
        commands, how = self.mapper.to_wtw(self._command if fresh else None)
        status = "ok" if how == "ok" else ("command timeout: standing" if how == "none" else f"{how}: standing")
        problem = self.sensor_problem(now)
        if problem is not None:
            self.reset()
            return StepResult(None, problem, commands, None, None)
        obs = build_observation(
            self._gravity, commands, self._q, self._dq, self.action, self.last_action, self.clock.clock, self.config
        )
        history = self.history.push(obs)
        raw = np.asarray(self.policy(history), dtype=np.float64).reshape(12)
        if not np.isfinite(raw).all():
            self.reset()
            return StepResult(None, "policy returned non-finite actions", commands, obs, raw)
        self.last_action = self.action
        self.action = np.clip(raw, -self.config.clip_actions, self.config.clip_actions)
        self.clock.advance(self.config.dt, commands[4], commands[5], commands[6], commands[7])
        return StepResult(action_to_targets(self.action, self.config), status, commands, obs, self.action)
