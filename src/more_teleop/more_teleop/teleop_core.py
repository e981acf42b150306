"""The operator's command in the VLA's 12-dim action space (the functional core of `more-teleop`; no rclpy).

[Contract]
- `TeleopState` holds what the operator has set: velocities (vx, vy, wz), one of the four trained gaits
  (action_contract.GAITS), a body-height preset, a pitch preset, and terminate. `command()` is the 12-vector in
  contract order: those values, the configured step frequency, and the stand command's stance width and footswing
  height; it always lies within the contract's bounds (every setter clips).
- Actions (`Action`) come from the key map and the joystick mapper and change the state:
      vel (dim, +1|-1)  add one step to vx, vy or wz          halt       velocities to zero
      set_vel (vx, vy, wz)  absolute velocities (joystick)    gait NAME  pronk | trot | bound | pace
      height +1|-1, pitch +1|-1  the next / previous preset   terminate  velocities zero, terminate = 1
  Terminate is latched (the robot stands, the simulator ends the episode) until an action that asks for motion
  (vel, halt, set_vel with a non-zero velocity, gait) clears it.
- The remaining kinds are for the node, not the state: episode start|success|failure|discard (service calls),
  control (keyboard takes / releases control), help.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from more_common.action_contract import (
    DEFAULT_SPEC,
    GAIT_NAMES,
    GAIT_SLICE,
    GAITS,
    INDEX,
    TERMINATE,
    VX,
    VY,
    WZ,
    ActionSpec,
    stand_command,
)

VELOCITY_DIMS = ("vx", "vy", "wz")
EPISODE_EVENTS = ("start", "success", "failure", "discard")
STATE_KINDS = ("vel", "set_vel", "halt", "gait", "height", "pitch", "terminate")
NODE_KINDS = ("episode", "control", "help")


@dataclass(frozen=True)
class Action:
    kind: str
    arg: Any = None

    def __post_init__(self) -> None:
        if self.kind not in STATE_KINDS + NODE_KINDS:
            raise ValueError(f"unknown action kind {self.kind!r}; known: {list(STATE_KINDS + NODE_KINDS)}")


@dataclass(frozen=True)
class TeleopConfig:
    """Steps, presets and limits of the operator's command (contract units). Every value is checked against the
    contract's bounds by name."""

    vx_step: float = 0.1  # [m/s] per key press
    vy_step: float = 0.1  # [m/s]
    wz_step: float = 0.2  # [rad/s]
    height_presets: tuple[float, ...] = (-0.22, -0.1, 0.0, 0.1)  # [m] offsets; -0.22 is the crawl height
    pitch_presets: tuple[float, ...] = (-0.2, 0.0, 0.2, 0.38)  # [rad]; 0.38 is the unload (nose-down) pitch
    step_frequency: float = 3.0  # [Hz]
    gait: str = "trot"  # at start
    spec: ActionSpec = field(default=DEFAULT_SPEC)

    def __post_init__(self) -> None:
        spec = self.spec
        for name, dim in (("vx_step", "vx"), ("vy_step", "vy"), ("wz_step", "wz")):
            value, i = getattr(self, name), INDEX[dim]
            span = spec.high[i] - spec.low[i]
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= span):
                raise ValueError(f"{name} must lie in (0, {span:g}], got {value!r}")
        for name, dim in (("height_presets", "body_height"), ("pitch_presets", "pitch")):
            presets, i = tuple(getattr(self, name)), INDEX[dim]
            if not presets or 0.0 not in presets:
                raise ValueError(f"{name} must be a non-empty list that contains 0.0 (nominal), got {list(presets)}")
            outside = [p for p in presets if not (spec.low[i] <= p <= spec.high[i])]
            if outside:
                raise ValueError(
                    f"{name} {outside} outside the contract's {dim} bounds [{spec.low[i]}, {spec.high[i]}]"
                )
            if list(presets) != sorted(set(presets)):
                raise ValueError(f"{name} must be strictly increasing, got {list(presets)}")
        i = INDEX["step_frequency"]
        if not spec.low[i] <= self.step_frequency <= spec.high[i]:
            raise ValueError(
                f"step_frequency must lie in [{spec.low[i]}, {spec.high[i]}] Hz, got {self.step_frequency}"
            )
        if self.gait not in GAITS:
            raise ValueError(f"gait must be one of {list(GAIT_NAMES)}, got {self.gait!r}")


class TeleopState:
    """The operator's current command (see the module contract)."""

    def __init__(self, config: TeleopConfig | None = None) -> None:
        self.config = config or TeleopConfig()
        self.velocity = np.zeros(3)  # vx, vy, wz
        self.gait = self.config.gait
        self.height_index = self.config.height_presets.index(0.0)
        self.pitch_index = self.config.pitch_presets.index(0.0)
        self.terminate = False

    def _clip_velocity(self) -> None:
        spec = self.config.spec
        lo = np.array([spec.low[VX], spec.low[VY], spec.low[WZ]])
        hi = np.array([spec.high[VX], spec.high[VY], spec.high[WZ]])
        self.velocity = np.clip(self.velocity, lo, hi)

    def apply(self, action: Action) -> bool:
        """Change the state; True if the action was a state action (False: one for the node)."""
        c = self.config
        if action.kind == "vel":
            dim, sign = action.arg
            step = {"vx": c.vx_step, "vy": c.vy_step, "wz": c.wz_step}[dim]
            i = VELOCITY_DIMS.index(dim)
            # round to the step grid so repeated presses land exactly on 0 again
            self.velocity[i] = round((self.velocity[i] + sign * step) / step) * step
            self.terminate = False
        elif action.kind == "set_vel":
            values = np.asarray(action.arg, dtype=np.float64)
            self.velocity = np.where(np.isfinite(values), values, 0.0)
            if np.any(self.velocity != 0.0):
                self.terminate = False
        elif action.kind == "halt":
            self.velocity[:] = 0.0
            self.terminate = False
        elif action.kind == "gait":
            if action.arg not in GAITS:
                raise ValueError(f"unknown gait {action.arg!r}; known: {list(GAIT_NAMES)}")
            self.gait = action.arg
            self.terminate = False
        elif action.kind == "height":
            self.height_index = int(np.clip(self.height_index + action.arg, 0, len(c.height_presets) - 1))
        elif action.kind == "pitch":
            self.pitch_index = int(np.clip(self.pitch_index + action.arg, 0, len(c.pitch_presets) - 1))
        elif action.kind == "terminate":
            self.velocity[:] = 0.0
            self.terminate = True
        else:
            return False
        self._clip_velocity()
        return True

    @property
    def body_height(self) -> float:
        return self.config.height_presets[self.height_index]

    @property
    def pitch(self) -> float:
        return self.config.pitch_presets[self.pitch_index]

    def command(self) -> np.ndarray:
        cmd = stand_command()
        cmd[VX], cmd[VY], cmd[WZ] = self.velocity
        cmd[GAIT_SLICE] = GAITS[self.gait]
        cmd[INDEX["step_frequency"]] = self.config.step_frequency
        cmd[INDEX["body_height"]] = self.body_height
        cmd[INDEX["pitch"]] = self.pitch
        cmd[TERMINATE] = 1.0 if self.terminate else 0.0
        return cmd

    def describe(self) -> str:
        vx, vy, wz = self.velocity
        return (
            f"vx {vx:+.2f} m/s  vy {vy:+.2f} m/s  wz {wz:+.2f} rad/s  gait {self.gait}  "
            f"height {self.body_height:+.2f} m  pitch {self.pitch:+.2f} rad" + ("  TERMINATE" if self.terminate else "")
        )
