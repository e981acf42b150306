"""A running simulator session for the ROS node: episodes back to back, driven by external commands.

The functional core of `sim_node`: no rclpy. Every `tick(command)` is one decision step of the
environment (the node calls it at the decision rate, so simulated time runs with wall time). A
missing or stale command is replaced by the stand command, as the real controller's watchdog would.
After an episode ends the session waits `reset_delay_ticks` ticks (publishing the final frame and
status so listeners see the outcome), then starts the next episode with the next seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from more_common.action_contract import stand_command
from more_sim.base_tracker import BaseState
from more_sim.config import SimConfig
from more_sim.env import make_env
from more_sim.world import NOMINAL_BASE_HEIGHT


@dataclass(frozen=True)
class TickResult:
    image: np.ndarray
    state: BaseState
    task: str
    instruction: str
    episode: int
    step: int
    terminated: bool
    truncated: bool
    success: bool
    reward: float
    failure: str
    new_episode: bool  # this tick started an episode (a new instruction)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the trunk's mean (vx, vy, wz) over the decision
    view: np.ndarray | None = None  # a third-person view (the go2 world node, when asked for)


def tick_result(
    obs: dict,
    info: dict,
    reward: float,
    terminated: bool,
    truncated: bool,
    episode: int,
    new_episode: bool,
    view: np.ndarray | None = None,
) -> TickResult:
    """One decision's outcome from the environment's obs/info (shared by both embodiments' sessions)."""
    return TickResult(
        image=obs["image"],
        state=info["state"],
        task=info["task"],
        instruction=info["instruction"],
        episode=episode,
        step=info["step"],
        terminated=bool(terminated),
        truncated=bool(truncated),
        success=bool(info["success"]),
        reward=float(reward),
        failure=info["failure"],
        new_episode=new_episode,
        velocity=(info["velocity"] or {}).get("achieved", (0.0, 0.0, 0.0)),
        view=view,
    )


class SimSession:
    def __init__(
        self,
        task: str = "go_to",
        split: str = "id",
        seed: int = 0,
        instruction: str = "",
        config: SimConfig | None = None,
        reset_delay_ticks: int = 5,
        auto_reset: bool = True,
    ) -> None:
        self.config = config or SimConfig()
        self.env = make_env(task, split, self.config)
        self.seed = seed
        self.instruction = instruction
        self.reset_delay_ticks = reset_delay_ticks
        self.auto_reset = auto_reset
        self.episode = -1
        self._last: TickResult | None = None
        self._wait = 0
        self._pending_reset = True

    @property
    def fovy_deg(self) -> float:
        return self.config.fovy

    def request_reset(self) -> None:
        """Start the next episode at the next tick."""
        self._pending_reset = True

    def _reset(self) -> TickResult:
        self.episode += 1
        options = {"instruction": self.instruction} if self.instruction else None
        obs, info = self.env.reset(seed=self.seed + self.episode, options=options)
        self._wait = 0
        self._pending_reset = False
        return self._result(obs, info, 0.0, False, False, new_episode=True)

    def tick(self, command: np.ndarray | None) -> TickResult:
        if self._pending_reset:
            self._last = self._reset()
            return self._last
        last = self._last
        if last.terminated or last.truncated:
            self._wait += 1
            if self.auto_reset and self._wait >= self.reset_delay_ticks:
                self._last = self._reset()
            return self._last
        obs, reward, terminated, truncated, info = self.env.step(stand_command() if command is None else command)
        self._last = self._result(obs, info, reward, terminated, truncated, new_episode=False)
        return self._last

    def _result(self, obs: dict, info: dict, reward: float, terminated: bool, truncated: bool, new_episode: bool):
        return tick_result(obs, info, reward, terminated, truncated, self.episode, new_episode)

    def close(self) -> None:
        self.env.close()


def camera_matrix(height: int, width: int, fovy_deg: float) -> list[float]:
    """Row-major 3x3 pinhole intrinsics of the simulated camera (square pixels, centred)."""
    fy = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return [fy, 0.0, (width - 1) / 2.0, 0.0, fy, (height - 1) / 2.0, 0.0, 0.0, 1.0]


def base_pose(state: BaseState) -> dict[str, Any]:
    """Position and orientation quaternion (x, y, z, w) of the trunk for odometry."""
    cy, sy = math.cos(state.yaw / 2), math.sin(state.yaw / 2)
    cp, sp = math.cos(state.pitch / 2), math.sin(state.pitch / 2)
    return {
        "position": (state.x, state.y, NOMINAL_BASE_HEIGHT + state.body_height),
        "orientation": (-sy * sp, cy * sp, sy * cp, cy * cp),
    }
