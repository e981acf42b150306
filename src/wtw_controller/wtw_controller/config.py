"""The controller's typed configuration: walk-these-ways' scales, trained command ranges, PD gains.

Defaults are walk-these-ways' (Margolis & Agrawal, CoRL 2022) as deployed; a YAML file may override
any field (see `load_config`), errors name the field. Ranges are where the policy was trained: a
command outside them is clipped, never passed on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from more_common.typed_config import build, load_yaml

NUM_COMMANDS = 15
COMMAND_NAMES: tuple[str, ...] = (
    "vx", "vy", "wz", "body_height", "step_frequency", "gait_phase", "gait_offset", "gait_bound",
    "gait_duration", "footswing_height", "pitch", "roll", "stance_width", "stance_length", "aux_reward",
)  # fmt: skip
# walk-these-ways' obs scales of the 15 commands, in COMMAND_NAMES order.
COMMAND_SCALES: tuple[float, ...] = (2.0, 2.0, 0.25, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.15, 0.3, 0.3, 1.0, 1.0, 1.0)
# Default joint pose in policy order (FL, FR, RL, RR x hip, thigh, calf).
DEFAULT_POSE_POLICY: tuple[float, ...] = (0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5)


def _range(low: float, high: float) -> tuple[float, float]:
    return (low, high)


@dataclass(frozen=True)
class CommandRanges:
    """Trained ranges; the contract's high-level command is clipped into these."""

    vx: tuple[float, float] = _range(-1.0, 1.0)
    vy: tuple[float, float] = _range(-0.6, 0.6)
    wz: tuple[float, float] = _range(-1.0, 1.0)
    body_height: tuple[float, float] = _range(-0.25, 0.15)
    step_frequency: tuple[float, float] = _range(2.0, 4.0)
    footswing_height: tuple[float, float] = _range(0.03, 0.35)
    pitch: tuple[float, float] = _range(-0.4, 0.4)
    stance_width: tuple[float, float] = _range(0.10, 0.45)

    def __post_init__(self) -> None:
        for name, (lo, hi) in vars(self).items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"ranges.{name} must be finite with low < high, got [{lo}, {hi}]")


@dataclass(frozen=True)
class WtwConfig:
    ranges: CommandRanges = field(default_factory=CommandRanges)
    xy_deadband: float = 0.2  # |(vx, vy)| below this -> 0 (training zeroed such commands)
    gait_duration: float = 0.5
    roll: float = 0.0
    stance_length: float = 0.40
    aux_reward: float = 0.0
    command_scales: tuple[float, ...] = COMMAND_SCALES
    dof_pos_scale: float = 1.0
    dof_vel_scale: float = 0.05
    clip_actions: float = 10.0
    action_scale: float = 0.25
    hip_scale_reduction: float = 0.5
    default_pose: tuple[float, ...] = DEFAULT_POSE_POLICY
    kp: float = 20.0
    kd: float = 0.5
    dt: float = 0.02
    history_length: int = 30

    def __post_init__(self) -> None:
        if len(self.command_scales) != NUM_COMMANDS:
            raise ValueError(f"command_scales needs {NUM_COMMANDS} values, got {len(self.command_scales)}")
        if len(self.default_pose) != 12:
            raise ValueError(f"default_pose needs 12 values (policy order), got {len(self.default_pose)}")
        for name in ("dt", "clip_actions", "action_scale", "kp"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
        for name in ("xy_deadband", "kd", "hip_scale_reduction"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}")
        if self.history_length < 1:
            raise ValueError(f"history_length must be >= 1, got {self.history_length}")


def load_config(path: str | Path | None) -> WtwConfig:
    """Defaults, overridden by a YAML mapping at `path` (if given)."""
    return WtwConfig() if not path else build(WtwConfig, load_yaml(path))
