"""What every locomotion backend gives the controller core, and which command dims it follows.

A backend turns the latest sensor readings and the 12-dim command (the action contract's) into joint position
targets in SDK order, at the policy rate, with fixed PD gains. The core (core.py) owns the watchdogs and
decides when a backend runs; a backend owns its policy, observation and command mapping.

Each backend states the contract dims it follows (`followed`); for the others it reports, per command, those
set away from the nominal stand command (`requested_but_ignored`), so the node can say on /diagnostics
that e.g. a crawl's body height was asked for and not done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from more_common.action_contract import (
    ACTION_NAMES,
    DEFAULT_HIGH,
    DEFAULT_LOW,
    GAIT_SLICE,
    INDEX,
    STAND_COMMAND,
    snap_gait,
)

# A dim counts as "asked for" when it is this share of its contract range away from the stand command's value
# (decoded commands are bin centres, never exactly nominal).
IGNORED_TOLERANCE = 0.02


@dataclass
class Sensors:
    """One reading of what the robot knows about itself (SDK joint order)."""

    q: np.ndarray  # (12,) [rad]
    dq: np.ndarray  # (12,) [rad/s]
    quaternion_xyzw: np.ndarray  # (4,) trunk orientation, normalised
    gyro: np.ndarray  # (3,) [rad/s] trunk frame


@dataclass
class BackendStep:
    targets: np.ndarray  # (12,) joint position targets, SDK order
    observation: np.ndarray  # what the policy saw
    action: np.ndarray  # what it answered (after clipping)


class NonFiniteActionError(RuntimeError):
    """The policy returned NaN or inf."""


class Backend(Protocol):
    name: str
    followed: tuple[str, ...]
    kp: float
    kd: float
    dt: float

    def reset(self) -> None:
        """Forget history (actions, filters): the next step starts as after power-on."""

    def map_command(self, action: np.ndarray | None) -> tuple[np.ndarray, str]:
        """The backend's own command for a contract action (None: none fresh) and what happened:
        'ok' | 'terminate' | 'invalid: <why>' | 'none'. Anything but 'ok' yields the stand command."""

    def step(self, sensors: Sensors, command: np.ndarray) -> BackendStep:
        """One policy step; raises NonFiniteActionError if the policy answers NaN/inf."""


def not_followed(followed: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in ACTION_NAMES if n not in followed)


def requested_but_ignored(action: np.ndarray | None, followed: tuple[str, ...]) -> tuple[str, ...]:
    """The dims a backend does not follow that `action` sets away from the stand command.

    The gait counts as one dim, 'gait', asked for when it snaps to another gait than the stand command's trot.
    """
    if action is None:
        return ()
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (len(ACTION_NAMES),) or not np.isfinite(a).all():
        return ()
    out: list[str] = []
    gait_names = ACTION_NAMES[GAIT_SLICE]
    ignored = not_followed(followed)
    if any(n in ignored for n in gait_names):
        asked, _ = snap_gait(*a[GAIT_SLICE])
        stand, _ = snap_gait(*STAND_COMMAND[GAIT_SLICE])
        if asked != stand:
            out.append("gait")
    for name in ignored:
        i = INDEX[name]
        if name in gait_names or name == "terminate":
            continue
        if abs(a[i] - STAND_COMMAND[i]) > IGNORED_TOLERANCE * (DEFAULT_HIGH[i] - DEFAULT_LOW[i]):
            out.append(name)
    return tuple(out)
