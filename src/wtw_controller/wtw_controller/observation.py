"""walk-these-ways' observation: projected gravity, scaled commands, joints, last actions, gait clock.

Per step (70 floats, policy joint order):
    [0:3]   gravity in the body frame, R^T (0, 0, -1)
    [3:18]  the 15 commands x their scales
    [18:30] (q - q_default) x 1.0
    [30:42] dq x 0.05
    [42:54] last action (clipped to +-10)
    [54:66] the action before that
    [66:70] clock inputs sin(2 pi foot_phase) for FL, FR, RL, RR
History: the last 30 observations, oldest first (2100 floats), zeros after a reset.
Clock (as in walk-these-ways' deploy agent): the observation uses the clock of the previous step;
after each policy step g <- (g + dt f) mod 1 and the foot phases are
FL = g + phase + offset + bound, FR = g + offset, RL = g + bound, RR = g + phase.
"""

from __future__ import annotations

import math

import numpy as np

from wtw_controller.config import WtwConfig

OBS_DIM = 70


def gravity_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R^T (0, 0, -1) with R = Rz(yaw) Ry(pitch) Rx(roll) (walk-these-ways' rotation from rpy)."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return (rz @ ry @ rx).T @ np.array([0.0, 0.0, -1.0])


def gravity_from_quaternion(x: float, y: float, z: float, w: float) -> np.ndarray:
    """R(q)^T (0, 0, -1) for a (x, y, z, w) quaternion (normalised here)."""
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"degenerate IMU quaternion {(x, y, z, w)}")
    x, y, z, w = x / n, y / n, z / n, w / n
    # third row of R(q), i.e. R^T e_z, negated
    return -np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])


class GaitClock:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.gait_index = 0.0
        self.foot_phases = np.zeros(4)
        self.clock = np.zeros(4)  # what the next observation sees

    def advance(self, dt: float, frequency: float, phase: float, offset: float, bound: float) -> None:
        g = (self.gait_index + dt * frequency) % 1.0
        self.gait_index = g
        self.foot_phases = np.array([g + phase + offset + bound, g + offset, g + bound, g + phase])
        self.clock = np.sin(2 * np.pi * self.foot_phases)


def build_observation(
    gravity: np.ndarray,
    commands: np.ndarray,
    q_policy: np.ndarray,
    dq_policy: np.ndarray,
    last_action: np.ndarray,
    last_last_action: np.ndarray,
    clock: np.ndarray,
    config: WtwConfig,
) -> np.ndarray:
    obs = np.concatenate(
        [
            gravity,
            commands * np.asarray(config.command_scales),
            (q_policy - np.asarray(config.default_pose)) * config.dof_pos_scale,
            dq_policy * config.dof_vel_scale,
            np.clip(last_action, -config.clip_actions, config.clip_actions),
            np.clip(last_last_action, -config.clip_actions, config.clip_actions),
            clock,
        ]
    )
    assert obs.shape == (OBS_DIM,), obs.shape
    return obs


class ObservationHistory:
    def __init__(self, length: int = 30, obs_dim: int = OBS_DIM) -> None:
        self.length, self.obs_dim = length, obs_dim
        self.buffer = np.zeros(length * obs_dim)

    def reset(self) -> None:
        self.buffer[:] = 0.0

    def push(self, obs: np.ndarray) -> np.ndarray:
        self.buffer = np.concatenate([self.buffer[self.obs_dim :], obs])
        return self.buffer
