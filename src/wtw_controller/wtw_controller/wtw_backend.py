"""The walk-these-ways backend: the paper's gait-conditioned policy (TorchScript run directory).

Follows all 12 command dims: vx, vy, wz, the gait (snapped to pronk/trot/bound/pace), step frequency, body
height, pitch, stance width, footswing height (each clipped to its trained range, commands.py) and terminate
(-> stand). Observation, history and gait clock: observation.py; action -> targets: actions.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from more_common.action_contract import ACTION_NAMES
from wtw_controller.actions import action_to_targets
from wtw_controller.backend import BackendStep, NonFiniteActionError, Sensors
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


class WtwBackend:
    name = "wtw"
    followed: tuple[str, ...] = ACTION_NAMES

    def __init__(self, policy: Policy, config: WtwConfig | None = None) -> None:
        self.policy = policy
        self.config = config or WtwConfig()
        self.kp, self.kd, self.dt = self.config.kp, self.config.kd, self.config.dt
        self.mapper = CommandMapper(self.config)
        self.history = ObservationHistory(self.config.history_length, OBS_DIM)
        self.clock = GaitClock()
        self.reset()

    def reset(self) -> None:
        self.history.reset()
        self.clock.reset()
        self.action = np.zeros(12)
        self.last_action = np.zeros(12)

    def map_command(self, action: np.ndarray | None) -> tuple[np.ndarray, str]:
        return self.mapper.to_wtw(action)

    def step(self, sensors: Sensors, command: np.ndarray) -> BackendStep:
        x, y, z, w = (float(v) for v in sensors.quaternion_xyzw)
        obs = build_observation(
            gravity_from_quaternion(x, y, z, w), command, sdk_to_policy(sensors.q), sdk_to_policy(sensors.dq),
            self.action, self.last_action, self.clock.clock, self.config,
        )  # fmt: skip
        history = self.history.push(obs)
        raw = np.asarray(self.policy(history), dtype=np.float64).reshape(12)
        if not np.isfinite(raw).all():
            raise NonFiniteActionError("policy returned non-finite actions")
        self.last_action = self.action
        self.action = np.clip(raw, -self.config.clip_actions, self.config.clip_actions)
        self.clock.advance(self.config.dt, command[4], command[5], command[6], command[7])
        return BackendStep(action_to_targets(self.action, self.config), obs, self.action)
