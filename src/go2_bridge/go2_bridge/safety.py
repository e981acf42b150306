"""The bridge's safety state machine: PASSIVE -> STAND_UP -> ACTIVE -> DAMPING (pure, clock injected).

    PASSIVE   zero torque. `stand_up` (service or remote) -> STAND_UP if LowState is fresh and sane.
    STAND_UP  interpolates from the measured pose to the stand pose over `stand_up_duration_s`
              (cosine ease: zero velocity at both ends), then holds it. `activate` -> ACTIVE once the
              interpolation is done and fresh, finite joint targets are arriving.
    ACTIVE    follows the controller's JointTargets, blended in from the stand command over
              `activate_blend_s` (no step in position or gains at the switch).
    DAMPING   kp = 0, kd = damping_kd: the robot sinks slowly. Latched: only `reset` leaves it (to
              PASSIVE), once the e-stop is released, LowState is fresh and `min_damping_s` have passed.

DAMPING is entered from any state on: `damp` request, the e-stop; and from STAND_UP/ACTIVE on: stale
or missing LowState, non-finite LowState, |roll| or |pitch| > max_tilt_rad, a measured joint position
beyond its limit by more than joint_limit_margin_rad, a measured joint speed beyond
velocity_limit_scale x the motor's limit; and from ACTIVE on: stale targets (older than
target_timeout_s) or non-finite targets; LowState declared lost (`lowstate_lost`: bad CRCs) counts as
stale LowState; and on `fault()` (the node reports exceptions through it).
Triggers are checked at the start of every cycle, so an e-stop received between two cycles damps the
very next one; a target timeout damps on the first cycle later than target_timeout_s after the last
target, i.e. within target_timeout_s + one cycle period. Every output goes through limit_commands.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from go2_bridge.go2 import NUM_MOTORS, Q_MAX, Q_MIN, STAND_POSE, VELOCITY_MAX
from go2_bridge.limits import limit_commands
from go2_bridge.lowcmd import MotorCommands
from go2_bridge.lowstate import RobotState


class Mode(enum.Enum):
    PASSIVE = "PASSIVE"
    STAND_UP = "STAND_UP"
    ACTIVE = "ACTIVE"
    DAMPING = "DAMPING"


class Level(enum.IntEnum):
    """Severity, numerically equal to diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2


REQUESTS: tuple[str, ...] = ("stand_up", "activate", "damp", "reset")


@dataclass(frozen=True)
class SafetyConfig:
    stand_up_duration_s: float = 2.0
    stand_kp: float = 50.0
    stand_kd: float = 3.0
    activate_blend_s: float = 0.5
    damping_kd: float = 3.0
    target_timeout_s: float = 0.1
    lowstate_timeout_s: float = 0.05
    max_tilt_rad: float = 0.8
    joint_limit_margin_rad: float = 0.1
    velocity_limit_scale: float = 1.0
    kp_max: float = 100.0
    kd_max: float = 10.0
    min_damping_s: float = 1.0
    stand_pose: tuple[float, ...] = field(default=tuple(STAND_POSE.tolist()))

    def __post_init__(self) -> None:
        for name in (
            "stand_up_duration_s", "stand_kp", "stand_kd", "damping_kd", "target_timeout_s",
            "lowstate_timeout_s", "max_tilt_rad", "velocity_limit_scale", "kp_max", "kd_max",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("activate_blend_s", "joint_limit_margin_rad", "min_damping_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.stand_kp > self.kp_max or max(self.stand_kd, self.damping_kd) > self.kd_max:
            raise ValueError(f"stand/damping gains must not exceed kp_max={self.kp_max}, kd_max={self.kd_max}")
        if self.max_tilt_rad > math.pi / 2:
            raise ValueError(f"max_tilt_rad must be <= pi/2, got {self.max_tilt_rad}")
        pose = np.asarray(self.stand_pose, dtype=np.float64)
        if pose.shape != (NUM_MOTORS,) or not np.all((pose >= Q_MIN) & (pose <= Q_MAX)):
            raise ValueError(f"stand_pose must be 12 joint angles within the Go2's limits, got {self.stand_pose}")


@dataclass
class JointTargetsData:
    """more_msgs/JointTargets without ROS: 12-vectors in SDK order."""

    position: np.ndarray
    velocity: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    torque_ff: np.ndarray

    @property
    def finite(self) -> bool:
        return all(np.isfinite(a).all() and a.shape == (NUM_MOTORS,) for a in self.arrays())

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.position, self.velocity, self.kp, self.kd, self.torque_ff)


@dataclass(frozen=True)
class Transition:
    time: float
    cycle: int
    source: Mode
    target: Mode
    reason: str
    level: Level


class SafetyCore:
    """Decides the 12 motor commands of every 500 Hz cycle. Not thread-safe: call from one thread."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self.stand_pose = np.asarray(self.config.stand_pose, dtype=np.float64)
        self.mode = Mode.PASSIVE
        self.level = Level.OK
        self.reason = "start-up"
        self.entered_at = -math.inf
        self.cycle = 0
        self.transitions: list[Transition] = []
        self.estop = False
        self._state: RobotState | None = None
        self._state_time = -math.inf
        self._targets: JointTargetsData | None = None
        self._targets_time = -math.inf
        self._stand_from = self.stand_pose.copy()
        self._blend_from: MotorCommands | None = None
        self._last = MotorCommands.zero_torque(self.stand_pose)
        self._pending_fault: str | None = None
        self._estop_seen = False  # an e-stop True since the last cycle, even if released before it
        self._lost_reason: str | None = None

    # -- inputs ------------------------------------------------------------------------------------
    def on_lowstate(self, state: RobotState, now: float) -> None:
        self._state = state
        self._state_time = now
        self._lost_reason = None

    def lowstate_lost(self, reason: str, now: float) -> None:
        """LowState is arriving but cannot be trusted (e.g. bad CRCs): treat it as stale from now on, the
        LowState timeout's path (DAMPING from STAND_UP/ACTIVE, stand_up/reset refused), until the next
        valid frame."""
        self._state_time = -math.inf
        self._lost_reason = reason

    def on_targets(self, targets: JointTargetsData, now: float) -> None:
        self._targets = targets
        self._targets_time = now

    def set_estop(self, active: bool, now: float) -> None:
        """The e-stop's latest value. A True is acted on at the next cycle even if a False follows before it: a
        press shorter than one 2 ms cycle still damps (and DAMPING then holds until reset)."""
        self.estop = bool(active)
        self._estop_seen = self._estop_seen or self.estop

    def fault(self, reason: str, now: float) -> None:
        """Report an error from outside (bad message, exception): DAMPING with level ERROR next cycle."""
        self._pending_fault = reason

    @property
    def has_lowstate(self) -> bool:
        return self._state is not None

    @property
    def robot_state(self) -> RobotState | None:
        return self._state

    def request(self, name: str, now: float) -> tuple[bool, str]:
        """Handle an operator request; returns (accepted, explanation)."""
        if name == "damp":
            if self.mode is not Mode.DAMPING:
                self._enter(Mode.DAMPING, now, "operator damp request", Level.WARN)
            return True, "damping"
        if name == "stand_up":
            if self.mode is not Mode.PASSIVE:
                return False, f"stand_up needs PASSIVE, state is {self.mode.value}"
            problem = self.estop_reason() or self._state_problem(now)
            if problem:
                return False, f"stand_up refused: {problem}"
            self._stand_from = np.clip(self._state.q, Q_MIN, Q_MAX)
            self._enter(Mode.STAND_UP, now, "operator stand_up request", Level.OK)
            return True, "standing up"
        if name == "activate":
            if self.mode is not Mode.STAND_UP:
                return False, f"activate needs STAND_UP, state is {self.mode.value}"
            if now - self.entered_at < self.config.stand_up_duration_s:
                return False, "activate refused: stand-up interpolation not finished"
            problem = self._targets_problem(now)
            if problem:
                return False, f"activate refused: {problem}"
            self._blend_from = self._last.copy()
            self._enter(Mode.ACTIVE, now, "operator activate request", Level.OK)
            return True, "active"
        if name == "reset":
            if self.mode is not Mode.DAMPING:
                return False, f"reset needs DAMPING, state is {self.mode.value}"
            problem = self.estop_reason() or self._state_problem(now, check_pose=False)
            if problem:
                return False, f"reset refused: {problem}"
            if now - self.entered_at < self.config.min_damping_s:
                return False, f"reset refused: damping for less than {self.config.min_damping_s} s"
            self._enter(Mode.PASSIVE, now, "operator reset request", Level.OK)
            return True, "passive"
        return False, f"unknown request {name!r}; known: {list(REQUESTS)}"

    # -- the cycle ---------------------------------------------------------------------------------
    def step(self, now: float) -> MotorCommands:
        """One control cycle: check the triggers, then compute the (limited) motor commands."""
        self.cycle += 1
        trigger = self._trigger(now)
        if trigger is not None and self.mode is not Mode.DAMPING:
            self._enter(Mode.DAMPING, now, trigger[0], trigger[1])
        elif trigger is not None and trigger[1] is Level.ERROR and self.level is not Level.ERROR:
            # Already damping: still surface the error (e.g. a bad message while damping).
            self.level, self.reason = Level.ERROR, trigger[0]
        raw = self._raw_command(now)
        q_m = self._state.q if self._state is not None else None
        self._last = limit_commands(raw, q_m, self.config.kp_max, self.config.kd_max)
        return self._last

    def estop_reason(self) -> str | None:
        return "e-stop is active" if self.estop else None

    def _trigger(self, now: float) -> tuple[str, Level] | None:
        if self._pending_fault is not None:
            reason, self._pending_fault = self._pending_fault, None
            return reason, Level.ERROR
        if self.estop or self._estop_seen:
            self._estop_seen = False
            return "e-stop", Level.WARN
        if self.mode in (Mode.STAND_UP, Mode.ACTIVE):
            problem = self._state_problem(now)
            if problem:
                return problem, Level.ERROR
        if self.mode is Mode.ACTIVE:
            problem = self._targets_problem(now)
            if problem:
                return problem, Level.ERROR
        return None

    def _state_problem(self, now: float, check_pose: bool = True) -> str | None:
        s = self._state
        if s is None:
            return "no LowState received"
        if self._lost_reason is not None:
            return f"LowState lost: {self._lost_reason}"
        age = now - self._state_time
        if age > self.config.lowstate_timeout_s:
            return f"LowState stale ({age * 1e3:.0f} ms > {self.config.lowstate_timeout_s * 1e3:.0f} ms)"
        if not s.finite:
            return "LowState has non-finite values"
        if not check_pose:
            return None
        roll, pitch, _ = s.roll_pitch_yaw()
        if not (math.isfinite(roll) and math.isfinite(pitch)):
            return "IMU quaternion is degenerate"
        if max(abs(roll), abs(pitch)) > self.config.max_tilt_rad:
            return f"tilt beyond limit (roll {roll:.2f}, pitch {pitch:.2f} rad > {self.config.max_tilt_rad})"
        margin = self.config.joint_limit_margin_rad
        outside = (s.q < Q_MIN - margin) | (s.q > Q_MAX + margin)
        if outside.any():
            i = int(np.argmax(outside))
            return f"joint {i} position {s.q[i]:.3f} rad beyond its limit"
        too_fast = np.abs(s.dq) > VELOCITY_MAX * self.config.velocity_limit_scale
        if too_fast.any():
            i = int(np.argmax(too_fast))
            return f"joint {i} speed {s.dq[i]:.1f} rad/s beyond its limit"
        return None

    def _targets_problem(self, now: float) -> str | None:
        if self._targets is None:
            return "no joint targets received"
        age = now - self._targets_time
        if age > self.config.target_timeout_s:
            return f"joint targets stale ({age * 1e3:.0f} ms > {self.config.target_timeout_s * 1e3:.0f} ms)"
        if not self._targets.finite:
            return "joint targets have non-finite values"
        return None

    def _raw_command(self, now: float) -> MotorCommands:
        c = self.config
        q_m = self._state.q if self._state is not None else self.stand_pose
        if self.mode is Mode.PASSIVE:
            return MotorCommands.zero_torque(q_m)
        if self.mode is Mode.DAMPING:
            cmd = MotorCommands.zero_torque(q_m)
            cmd.kd[:] = c.damping_kd
            return cmd
        z = np.zeros(NUM_MOTORS)
        if self.mode is Mode.STAND_UP:
            alpha = min(1.0, max(0.0, (now - self.entered_at) / c.stand_up_duration_s))
            ease = 0.5 - 0.5 * math.cos(math.pi * alpha)
            q = self._stand_from + ease * (self.stand_pose - self._stand_from)
            return MotorCommands(
                q=q, dq=z, kp=np.full(NUM_MOTORS, c.stand_kp), kd=np.full(NUM_MOTORS, c.stand_kd), tau=z.copy()
            )
        # ACTIVE
        t = self._targets
        beta = 1.0 if c.activate_blend_s <= 0 else min(1.0, max(0.0, (now - self.entered_at) / c.activate_blend_s))
        a = self._blend_from if self._blend_from is not None else MotorCommands.zero_torque(q_m)
        return MotorCommands(
            q=(1 - beta) * a.q + beta * t.position,
            dq=beta * t.velocity,
            kp=(1 - beta) * a.kp + beta * t.kp,
            kd=(1 - beta) * a.kd + beta * t.kd,
            tau=beta * t.torque_ff,
        )

    def _enter(self, mode: Mode, now: float, reason: str, level: Level) -> None:
        self.transitions.append(Transition(now, self.cycle, self.mode, mode, reason, level))
        del self.transitions[:-100]  # keep the recent history only
        self.mode, self.reason, self.level, self.entered_at = mode, reason, level, now

    def status(self, now: float) -> dict[str, str]:
        """Key/values for diagnostics."""
        return {
            "state": self.mode.value,
            "reason": self.reason,
            "estop": str(self.estop).lower(),
            "cycle": str(self.cycle),
            "lowstate_age_ms": f"{(now - self._state_time) * 1e3:.1f}" if self._state is not None else "inf",
            "targets_age_ms": f"{(now - self._targets_time) * 1e3:.1f}" if self._targets is not None else "inf",
            "time_in_state_s": f"{now - self.entered_at:.3f}",
        }
