"""sensor_msgs/Joy -> teleop actions (pure). Defaults follow the `joy` package's game_controller_node (SDL game
controller layout, the same for Xbox and PlayStation pads); every index is a parameter for other pads.

    button  0 A (cross)      gait trot           with RB: episode success
    button  1 B (circle)     gait bound          with RB: episode failure
    button  2 X (square)     gait pace           with RB: episode discard
    button  3 Y (triangle)   gait pronk          with RB: episode start
    button  6 START          terminate
    button  9 LB             deadman: teleop commands are published only while it is held
    button 10 RB             episode modifier
    button 11 / 12  D-pad up / down      body height preset up / down
    button 13 / 14  D-pad left / right   pitch preset previous (nose up) / next (nose down)
    axis 1 left stick up/down -> vx,  axis 0 left stick left/right -> vy (left +),
    axis 2 right stick left/right -> wz (left = counter-clockwise +); |axis| < deadzone reads 0; full deflection
    is the contract's bound (1.0 m/s, 0.6 m/s, 1.0 rad/s) times `scale`.

Buttons act on the press (0 -> 1), once. A message with too few axes or buttons for the mapping, or a non-finite
axis, is rejected by name (`JoyError`): no motion comes from it and the deadman reads released.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from more_common.action_contract import DEFAULT_SPEC, VX, VY, WZ
from more_teleop.teleop_core import Action


class JoyError(ValueError):
    """A Joy message the mapping cannot read (names the axis or button)."""


@dataclass(frozen=True)
class JoyConfig:
    axis_vx: int = 1
    axis_vy: int = 0
    axis_wz: int = 2
    deadzone: float = 0.1
    scale: float = 1.0  # fraction of the contract's velocity bounds at full deflection
    enable_button: int = 9
    episode_modifier: int = 10
    terminate_button: int = 6
    button_a: int = 0
    button_b: int = 1
    button_x: int = 2
    button_y: int = 3
    height_up: int = 11
    height_down: int = 12
    pitch_prev: int = 13
    pitch_next: int = 14

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if name in ("deadzone", "scale"):
                continue
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name} must be an index >= 0, got {value!r}")
        if not (math.isfinite(self.deadzone) and 0.0 <= self.deadzone < 1.0):
            raise ValueError(f"deadzone must lie in [0, 1), got {self.deadzone!r}")
        if not (math.isfinite(self.scale) and 0.0 < self.scale <= 1.0):
            raise ValueError(f"scale must lie in (0, 1], got {self.scale!r}")

    def face_actions(self) -> dict[int, tuple[Action, Action]]:
        """Face button -> (action without the modifier, action with it)."""
        return {
            self.button_a: (Action("gait", "trot"), Action("episode", "success")),
            self.button_b: (Action("gait", "bound"), Action("episode", "failure")),
            self.button_x: (Action("gait", "pace"), Action("episode", "discard")),
            self.button_y: (Action("gait", "pronk"), Action("episode", "start")),
        }


@dataclass(frozen=True)
class JoyReading:
    enabled: bool  # deadman held
    velocity: tuple[float, float, float]  # vx, vy, wz from the sticks
    actions: tuple[Action, ...]  # from buttons pressed in this message


class JoyMapper:
    """Turns successive Joy messages into readings (keeps the previous buttons for press detection)."""

    def __init__(self, config: JoyConfig | None = None) -> None:
        self.config = config or JoyConfig()
        c = self.config
        self._max = (DEFAULT_SPEC.high[VX] * c.scale, DEFAULT_SPEC.high[VY] * c.scale, DEFAULT_SPEC.high[WZ] * c.scale)
        self._previous: tuple[int, ...] = ()

    def _axis(self, axes: Sequence[float], index: int, name: str) -> float:
        if index >= len(axes):
            raise JoyError(f"joy message has {len(axes)} axes; {name}={index} needs {index + 1}")
        value = float(axes[index])
        if not math.isfinite(value):
            raise JoyError(f"joy axis {name}={index} is not finite ({value})")
        value = max(-1.0, min(1.0, value))
        return 0.0 if abs(value) < self.config.deadzone else value

    def read(self, axes: Sequence[float], buttons: Sequence[int]) -> JoyReading:
        c = self.config
        needed = max(v for k, v in vars(c).items() if k not in ("deadzone", "scale", "axis_vx", "axis_vy", "axis_wz"))
        if len(buttons) <= needed:
            self._previous = ()
            raise JoyError(f"joy message has {len(buttons)} buttons; the mapping uses button index {needed}")
        velocity = (
            self._axis(axes, c.axis_vx, "axis_vx") * self._max[0],
            self._axis(axes, c.axis_vy, "axis_vy") * self._max[1],
            self._axis(axes, c.axis_wz, "axis_wz") * self._max[2],
        )
        now = tuple(1 if b else 0 for b in buttons)
        prev = self._previous if len(self._previous) == len(now) else (0,) * len(now)
        self._previous = now

        def pressed(i: int) -> bool:
            return bool(now[i] and not prev[i])

        modifier = bool(now[c.episode_modifier])
        actions: list[Action] = []
        for button, (plain, modified) in c.face_actions().items():
            if pressed(button):
                actions.append(modified if modifier else plain)
        for button, action in (
            (c.terminate_button, Action("terminate")),
            (c.height_up, Action("height", +1)),
            (c.height_down, Action("height", -1)),
            (c.pitch_prev, Action("pitch", -1)),
            (c.pitch_next, Action("pitch", +1)),
        ):
            if pressed(button):
                actions.append(action)
        return JoyReading(enabled=bool(now[c.enable_button]), velocity=velocity, actions=tuple(actions))
