"""What the monitoring shows, without ROS: RViz marker content and the annotated camera image.

[Contract]
- `command_markers(action, state, instruction, fault)` -> MarkerSpec list in the robot frame (base_link):
    velocity  ARROW from (0, 0, ARROW_Z) to (vx, vy, ARROW_Z) * ARROW_M_PER_MPS (1 m of arrow per m/s)
    yaw_rate  LINE_STRIP arc of radius YAW_ARC_RADIUS from angle 0 to wz * 1 s (counter-clockwise positive)
    body      CUBE at height NOMINAL_HEIGHT + body_height, pitched by `pitch` about the body y axis
    text      TEXT_VIEW_FACING above the body: gait, step frequency, height, pitch, instruction, state
  Colours by state: running green, done blue, disabled grey, fault red.
- `annotate(frame, ...)` -> HxWx3 uint8: the camera frame on the left, a panel on the right with the state,
  the instruction, and one row per command dim with its value and a bar whose length is q * BAR_PX pixels.
  `bar_row_span(i)` gives the pixel rows of dim i's bar (tests and overlays use it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from more_common.action_contract import ACTION_NAMES, GAIT_SLICE, INDEX, TERMINATE, snap_gait
from more_vla_policy.policy_core import STATE_DISABLED, STATE_DONE, STATE_FAULT, STATE_NAMES, STATE_RUNNING

NOMINAL_HEIGHT = 0.30  # [m] Go2 standing base height; body_height is an offset from it
ARROW_Z = 0.30
ARROW_M_PER_MPS = 1.0
YAW_ARC_RADIUS = 0.4
YAW_ARC_POINTS = 17
BODY_SIZE = (0.38, 0.19, 0.10)  # [m] roughly the Go2 trunk
TEXT_HEIGHT = 0.06
STATE_COLORS: dict[int, tuple[float, float, float, float]] = {
    STATE_RUNNING: (0.1, 0.8, 0.2, 1.0),
    STATE_DONE: (0.2, 0.4, 1.0, 1.0),
    STATE_DISABLED: (0.6, 0.6, 0.6, 1.0),
    STATE_FAULT: (1.0, 0.1, 0.1, 1.0),
}


@dataclass(frozen=True)
class MarkerSpec:
    """One visualization_msgs/Marker, as plain data (kind: arrow | line_strip | cube | text)."""

    ns: str
    id: int
    kind: str
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # quaternion x, y, z, w
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    points: tuple[tuple[float, float, float], ...] = ()
    text: str = ""


def gait_name(action: np.ndarray) -> str:
    try:
        return snap_gait(*np.asarray(action, dtype=np.float64)[GAIT_SLICE])[0]
    except ValueError:
        return "invalid"


def status_text(action: np.ndarray, state: int, instruction: str, fault: str = "") -> str:
    """The three text lines shown above the robot (and in the annotated image's header)."""
    a = np.asarray(action, dtype=np.float64)
    line1 = (
        f"{gait_name(a)} {a[INDEX['step_frequency']]:.1f} Hz  h {a[INDEX['body_height']]:+.2f} m"
        f"  pitch {a[INDEX['pitch']]:+.2f} rad"
    )
    line2 = f'"{instruction}"' if instruction else "(no instruction)"
    line3 = STATE_NAMES.get(state, str(state)) + (f": {fault}" if fault else "")
    return "\n".join((line1, line2, line3))


def command_markers(action: np.ndarray, state: int, instruction: str, fault: str = "") -> list[MarkerSpec]:
    a = np.asarray(action, dtype=np.float64)
    color = STATE_COLORS.get(state, STATE_COLORS[STATE_FAULT])
    vx, vy, wz = a[INDEX["vx"]], a[INDEX["vy"]], a[INDEX["wz"]]
    arrow = MarkerSpec(
        ns="velocity",
        id=0,
        kind="arrow",
        points=((0.0, 0.0, ARROW_Z), (vx * ARROW_M_PER_MPS, vy * ARROW_M_PER_MPS, ARROW_Z)),
        scale=(0.03, 0.06, 0.06),  # shaft diameter, head diameter, head length
        color=color,
    )
    angles = np.linspace(0.0, wz * 1.0, YAW_ARC_POINTS)
    arc = MarkerSpec(
        ns="yaw_rate",
        id=1,
        kind="line_strip",
        points=tuple((YAW_ARC_RADIUS * math.cos(t), YAW_ARC_RADIUS * math.sin(t), ARROW_Z) for t in angles),
        scale=(0.02, 0.0, 0.0),
        color=color,
    )
    pitch = a[INDEX["pitch"]]
    body = MarkerSpec(
        ns="body",
        id=2,
        kind="cube",
        position=(0.0, 0.0, NOMINAL_HEIGHT + a[INDEX["body_height"]]),
        orientation=(0.0, math.sin(pitch / 2), 0.0, math.cos(pitch / 2)),
        scale=BODY_SIZE,
        color=(color[0], color[1], color[2], 0.5),
    )
    text = MarkerSpec(
        ns="text",
        id=3,
        kind="text",
        position=(0.0, 0.0, NOMINAL_HEIGHT + 0.45),
        scale=(0.0, 0.0, TEXT_HEIGHT),
        color=(1.0, 1.0, 1.0, 1.0),
        text=status_text(a, state, instruction, fault),
    )
    return [arrow, arc, body, text]


# -- annotated image ---------------------------------------------------------------------------------
PANEL_W = 300
HEADER_ROWS = 3
ROW_H = 18
BAR_X0 = 190  # first panel column of a bar
BAR_PX = 100  # bar length for q = 1
BAR_COLOR = (40, 200, 255)
BAR_BG = (60, 60, 60)
PANEL_BG = (20, 20, 20)
TEXT_COLOR = (235, 235, 235)
MIN_HEIGHT = (HEADER_ROWS + len(ACTION_NAMES) + 1) * ROW_H


def bar_row_span(i: int) -> tuple[int, int]:
    """Pixel rows [start, stop) of dim i's Q-value bar."""
    top = (HEADER_ROWS + i) * ROW_H + 3
    return top, top + ROW_H - 6


@lru_cache(maxsize=1)
def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _format_value(i: int, value: float) -> str:
    if i == TERMINATE:
        return "yes" if value >= 0.5 else "no"
    return f"{value:+.3f}"


def annotate(
    frame: np.ndarray | None,
    action: np.ndarray,
    q_values: np.ndarray | None,
    state: int,
    instruction: str,
    fault: str = "",
) -> np.ndarray:
    """The camera frame with a panel: state, instruction, each dim's value and Q-value bar."""
    from PIL import Image, ImageDraw

    if frame is None:
        frame = np.zeros((240, 320, 3), np.uint8)
    frame = np.asarray(frame, dtype=np.uint8)
    h = max(frame.shape[0], MIN_HEIGHT)
    out = np.empty((h, frame.shape[1] + PANEL_W, 3), np.uint8)
    out[:, : frame.shape[1]] = 0
    out[: frame.shape[0], : frame.shape[1]] = frame
    x0 = frame.shape[1]
    out[:, x0:] = PANEL_BG
    a = np.asarray(action, dtype=np.float64)
    q = None if q_values is None else np.asarray(q_values, dtype=np.float64)
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    font = _font()
    state_color = tuple(int(255 * c) for c in STATE_COLORS.get(state, STATE_COLORS[STATE_FAULT])[:3])
    header = [
        (STATE_NAMES.get(state, str(state)) + (f": {fault}" if fault else ""))[:48],
        (instruction or "(no instruction)")[:48],
        "dim              value        Q",
    ]
    for row, line in enumerate(header):
        draw.text((x0 + 4, row * ROW_H + 3), line, fill=state_color if row == 0 else TEXT_COLOR, font=font)
    for i, name in enumerate(ACTION_NAMES):
        y = (HEADER_ROWS + i) * ROW_H + 3
        draw.text((x0 + 4, y), name[:16], fill=TEXT_COLOR, font=font)
        draw.text((x0 + 120, y), _format_value(i, a[i]), fill=TEXT_COLOR, font=font)
    result = np.array(image)
    # Bars last, so no glyph overhang can change their length.
    for i in range(len(ACTION_NAMES)):
        r0, r1 = bar_row_span(i)
        result[r0:r1, x0 + BAR_X0 : x0 + BAR_X0 + BAR_PX] = BAR_BG
        if q is not None and math.isfinite(q[i]):
            length = round(min(max(q[i], 0.0), 1.0) * BAR_PX)
            result[r0:r1, x0 + BAR_X0 : x0 + BAR_X0 + length] = BAR_COLOR
    return result
