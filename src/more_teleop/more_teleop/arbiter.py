"""Command arbitration between the VLA and teleoperation (the functional core of `command_mux`; no rclpy).

[Contract]
- Sources, highest priority first: "teleop" (the 12-dim QuadrupedCommand of `more-teleop` or a scripted
  operator), "twist" (a geometry_msgs/Twist from teleop_twist_keyboard / teleop_twist_joy, REP-103), "vla" (the
  policy's QuadrupedCommand). A source is live while its last message is younger than its timeout:
  `teleop_timeout_s` for both teleop sources (the deadman), `vla_timeout_s` for the VLA. The active source is the
  live source of highest priority; none live -> "stop" (the contract's stand command).
- Hand-back: when a teleop source was in control and goes silent, the VLA takes over again only with a command
  received after the override ended (`resume="fresh"`, the default: the robot stands until the policy decides
  anew), or at once with its newest live command (`resume="immediate"`, twist_mux's behaviour).
- Pass-through: a message from the active source is published at once and unchanged (stamp, decoder bins and
  Q-values of a VLA command are kept), so the mux adds no latency and a recorded bag replays as without it;
  messages of a source that is not active are dropped (counted). `tick(now)` is the timer's job: the stop command
  while an operator's override has ended and the VLA has not taken over, and the VLA's newest command once on an
  immediate hand-back. Nothing else is published: before any input, or when the VLA alone falls silent, the mux is
  as quiet as the policy (the controller's and the simulator's own command watchdogs stand the robot).
- Bad input never moves the robot: a non-finite value (NaN, inf) makes that message a stop command from its source
  (the source keeps control, so a broken operator input cannot hand the robot to the VLA) and is reported naming
  the field; values outside the action contract's bounds are clipped and the clipped dims reported.
- Time is an argument (seconds of a monotonic clock), never read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from more_common.action_contract import (
    ACTION_NAMES,
    DEFAULT_SPEC,
    TERMINATE,
    VX,
    VY,
    WZ,
    ActionSpec,
    stand_command,
)

TELEOP, TWIST, VLA, STOP = "teleop", "twist", "vla", "stop"
PRIORITY: tuple[str, ...] = (TELEOP, TWIST, VLA)  # highest first
OPERATOR_SOURCES = (TELEOP, TWIST)
RESUME_MODES = ("fresh", "immediate")
# Twist fields a legged base cannot follow: ignored (and reported when not zero).
TWIST_IGNORED = ("linear.z", "angular.x", "angular.y")


@dataclass(frozen=True)
class MuxConfig:
    teleop_timeout_s: float = 0.5  # deadman: a teleop source older than this has let go
    vla_timeout_s: float = 1.0  # a VLA command older than this is not followed (5 decisions at 5 Hz)
    resume: str = "fresh"  # "fresh" | "immediate" (see the module contract)

    def __post_init__(self) -> None:
        for name in ("teleop_timeout_s", "vla_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.resume not in RESUME_MODES:
            raise ValueError(f"resume must be one of {list(RESUME_MODES)}, got {self.resume!r}")


@dataclass(frozen=True)
class Checked:
    """One incoming message after validation: what would be executed if its source is active."""

    source: str
    command: np.ndarray  # 12-vector, contract order; the stand command if the message was rejected
    error: str = ""  # why the message was rejected ("" if it was not)
    clipped: tuple[str, ...] = ()  # contract dims clipped to the bounds
    ignored: tuple[str, ...] = ()  # twist fields the robot cannot follow that were not zero

    @property
    def rejected(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True)
class Output:
    """A command to publish now."""

    source: str  # TELEOP | TWIST | VLA | STOP
    command: np.ndarray
    passthrough: bool  # True: the incoming message itself may be forwarded unchanged
    reason: str = ""


@dataclass
class SourceStats:
    received: int = 0
    rejected: int = 0
    clipped: int = 0
    dropped: int = 0  # arrived while a higher-priority source was in control
    last_time: float = -math.inf
    last_error: str = ""
    last_clipped: tuple[str, ...] = ()


def check_command(source: str, values: np.ndarray, spec: ActionSpec = DEFAULT_SPEC) -> Checked:
    """Validate a 12-vector (from a QuadrupedCommand): non-finite -> rejected (stand), else clipped to `spec`."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (len(ACTION_NAMES),):
        return Checked(source, stand_command(), error=f"command has shape {arr.shape}, expected (12,)")
    bad = [ACTION_NAMES[i] for i in np.nonzero(~np.isfinite(arr))[0]]
    if bad:
        return Checked(source, stand_command(), error=f"non-finite {', '.join(bad)}")
    clipped = tuple(spec.out_of_range(arr))
    return Checked(source, spec.clip(arr), clipped=clipped)


def check_twist(
    linear: tuple[float, float, float], angular: tuple[float, float, float], spec: ActionSpec = DEFAULT_SPEC
) -> Checked:
    """A REP-103 Twist (base_link: x forward, y left, z up; yaw counter-clockwise) -> the contract's command.

    vx = linear.x, vy = linear.y, wz = angular.z, clipped to the contract's bounds; every other dim is the stand
    command's (trot, nominal posture, not terminated). Any non-finite field rejects the message."""
    fields = {
        "linear.x": linear[0],
        "linear.y": linear[1],
        "linear.z": linear[2],
        "angular.x": angular[0],
        "angular.y": angular[1],
        "angular.z": angular[2],
    }
    bad = [name for name, v in fields.items() if not math.isfinite(v)]
    if bad:
        return Checked(TWIST, stand_command(), error=f"non-finite twist {', '.join(bad)}")
    cmd = stand_command()
    cmd[VX], cmd[VY], cmd[WZ] = fields["linear.x"], fields["linear.y"], fields["angular.z"]
    clipped = tuple(spec.out_of_range(cmd))
    ignored = tuple(name for name in TWIST_IGNORED if fields[name] != 0.0)
    return Checked(TWIST, spec.clip(cmd), clipped=clipped, ignored=ignored)


def twist_of(command: np.ndarray) -> tuple[float, float, float]:
    """(vx, vy, wz) of the motion a command asks for: zeros when it terminates (the robot stands)."""
    if command[TERMINATE] >= 0.5:
        return (0.0, 0.0, 0.0)
    return (float(command[VX]), float(command[VY]), float(command[WZ]))


@dataclass
class CommandArbiter:
    """Decides which source drives the robot; see the module contract."""

    config: MuxConfig = field(default_factory=MuxConfig)
    stats: dict[str, SourceStats] = field(default_factory=lambda: {s: SourceStats() for s in PRIORITY})
    overrides: int = 0  # times an operator took control from a live VLA

    def __post_init__(self) -> None:
        self._latest: dict[str, Checked] = {}
        self._active = STOP
        self._released_at = -math.inf  # when the last operator override ended (its deadman expired)
        self._pending_resume = False  # immediate hand-back: tick() publishes the VLA's newest command once
        self._stop_owed = False  # an override ended and the VLA has not taken over: tick() publishes stop
        self.reason = "no command received yet"

    # -- liveness ----------------------------------------------------------------------------------
    def _timeout(self, source: str) -> float:
        return self.config.vla_timeout_s if source == VLA else self.config.teleop_timeout_s

    def _live(self, source: str, now: float) -> bool:
        return now - self.stats[source].last_time <= self._timeout(source)

    def _operator_expiry(self) -> float:
        return max(self.stats[s].last_time for s in OPERATOR_SOURCES) + self.config.teleop_timeout_s

    def _vla_allowed(self, now: float) -> bool:
        if not self._live(VLA, now):
            return False
        if self.config.resume == "immediate":
            return True
        return self.stats[VLA].last_time > self._released_at

    def _select(self, now: float) -> tuple[str, str]:
        for source in OPERATOR_SOURCES:
            if self._live(source, now):
                return source, f"{source} in control"
        self._released_at = max(self._released_at, self._operator_expiry())
        if self._vla_allowed(now):
            return VLA, "vla in control"
        if self._live(VLA, now):
            return STOP, "teleop released: standing until the VLA sends a fresh command"
        if self._released_at > -math.inf:
            return STOP, "teleop released, no VLA command: standing"
        if self.stats[VLA].last_time > -math.inf:
            return STOP, f"no VLA command for more than {self.config.vla_timeout_s:g} s"
        return STOP, "no command received yet"

    def _switch(self, source: str, reason: str, now: float) -> None:
        """Record the active source, count overrides, note a stop owed after an override or an immediate resume."""
        previous = self._active
        if source != previous:
            if source in OPERATOR_SOURCES and previous not in OPERATOR_SOURCES and self._live(VLA, now):
                self.overrides += 1
            if previous in OPERATOR_SOURCES and source == STOP:
                self._stop_owed = True
            if source == VLA:
                self._stop_owed = False
                self._pending_resume = self.config.resume == "immediate"
        self._active, self.reason = source, reason

    # -- inputs and the timer ----------------------------------------------------------------------
    def receive(self, checked: Checked, now: float) -> Output | None:
        """An incoming message (already checked). Returns what to publish now, or None (another source rules)."""
        st = self.stats[checked.source]
        st.received += 1
        st.last_time = now
        if checked.rejected:
            st.rejected += 1
            st.last_error = checked.error
        if checked.clipped:
            st.clipped += 1
            st.last_clipped = checked.clipped
        self._latest[checked.source] = checked
        source, reason = self._select(now)
        self._switch(source, reason, now)
        if source != checked.source:
            st.dropped += 1
            return None
        self._pending_resume = False  # the fresh message itself is the hand-back
        if checked.rejected:
            return Output(
                STOP, stand_command(), passthrough=False, reason=f"rejected {checked.source}: {checked.error}"
            )
        return Output(source, checked.command, passthrough=not checked.clipped, reason=reason)

    def tick(self, now: float) -> Output | None:
        """The periodic check: the stop command owed after an override, a pending immediate hand-back."""
        source, reason = self._select(now)
        self._switch(source, reason, now)
        if source == STOP:
            return Output(STOP, stand_command(), passthrough=False, reason=reason) if self._stop_owed else None
        if source == VLA and self._pending_resume:
            self._pending_resume = False
            latest = self._latest[VLA]
            if latest.rejected:
                return Output(STOP, stand_command(), passthrough=False, reason=f"rejected vla: {latest.error}")
            return Output(VLA, latest.command, passthrough=False, reason="vla resumes (immediate)")
        return None

    @property
    def active(self) -> str:
        """The source in control at the last receive() or tick()."""
        return self._active

    def ages(self, now: float) -> dict[str, float]:
        """Seconds since each source's last message (inf if none yet)."""
        return {s: now - self.stats[s].last_time for s in PRIORITY}
