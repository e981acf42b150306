"""Keyboard -> teleop actions (pure). One character per key press; the table below is what `more-teleop --help`
prints, generated from KEYMAP so the two never disagree."""

from __future__ import annotations

from more_common.action_contract import GAIT_NAMES
from more_teleop.teleop_core import Action

# key -> (action, what it does)
KEYMAP: dict[str, tuple[Action, str]] = {
    "w": (Action("vel", ("vx", +1)), "forward faster (vx + vx_step)"),
    "s": (Action("vel", ("vx", -1)), "forward slower / backward (vx - vx_step)"),
    "a": (Action("vel", ("vy", +1)), "sideways left (vy + vy_step)"),
    "d": (Action("vel", ("vy", -1)), "sideways right (vy - vy_step)"),
    "q": (Action("vel", ("wz", +1)), "turn left, counter-clockwise (wz + wz_step)"),
    "e": (Action("vel", ("wz", -1)), "turn right (wz - wz_step)"),
    " ": (Action("halt"), "all velocities to zero"),
    **{str(i + 1): (Action("gait", name), f"gait {name}") for i, name in enumerate(GAIT_NAMES)},
    "r": (Action("height", +1), "body height: next preset up"),
    "f": (Action("height", -1), "body height: next preset down"),
    "t": (Action("pitch", +1), "pitch: next preset (more nose-down)"),
    "g": (Action("pitch", -1), "pitch: previous preset (more nose-up)"),
    "x": (Action("terminate"), "terminate: the task is done, stand (the VLA's 12th dim)"),
    "b": (Action("episode", "start"), "episode: begin recording"),
    "y": (Action("episode", "success"), "episode: stop, label success"),
    "n": (Action("episode", "failure"), "episode: stop, label failure"),
    "c": (Action("episode", "discard"), "episode: cancel (discard: left out of the dataset)"),
    "m": (Action("control"), "keyboard takes / releases control (released: the VLA drives)"),
    "h": (Action("help"), "print this table"),
    "?": (Action("help"), "print this table"),
}


def key_action(key: str) -> Action | None:
    """The action of one key (letters case-insensitive), None for a key that means nothing."""
    entry = KEYMAP.get(key) or KEYMAP.get(key.lower())
    return entry[0] if entry else None


def key_table() -> str:
    lines = []
    for key, (_, text) in KEYMAP.items():
        shown = "space" if key == " " else key
        lines.append(f"  {shown:<6} {text}")
    return "\n".join(lines)
