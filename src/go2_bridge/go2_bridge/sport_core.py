"""The sport-mode backend's decisions (pure, time injected): QuadrupedCommand 12-vectors in, sport API requests out.

The Go2's own locomotion walks; this core only tells it what to do, through the calls of sport_api. It never
produces a LowCmd and never releases sport mode (those belong to the low-level bridge).

- Move (vx, vy, wz) is streamed while the newest command is fresh (younger than `command_timeout_s`), valid and
  not terminate, at most `move_rate_hz` (no two Moves closer than 1 / rate). When streaming ends for any reason
  (timeout, terminate, an invalid command, e-stop, a damp / stand-down request) StopMove is sent once.
- The command goes through the action contract's `for_controller` with the configured velocity, pitch and body
  height limits as bounds: clipped (clipped dims are counted and named), gait snapped, terminate binarised;
  NaN/inf or a wrong size makes it invalid: StopMove and an ERROR until the next valid command.
- Pitch: Euler {"x": 0, "y": pitch, "z": 0} when it moved by more than the dead band, at most `posture_rate_hz`;
  body height: BodyHeight {"data": h} the same way, only where the firmware offers it (before 1.1.6). Both go
  back to nominal (0) when streaming ends.
- Gaits (off unless `switch_gaits`): a snapped gait held for `gait_hold_s` is selected with the firmware's call
  (sport_api.GaitMap); a boolean mode switch is switched off again when leaving it. Nothing safety-related
  depends on a gait call: the stop path is StopMove / Damp only.
- E-stop: StopMove, then Damp, in that order and in the same step; Damp is repeated every `estop_repeat_s` while
  the e-stop is held. StopMove first zeroes the velocity target, so a robot whose firmware refuses or delays Damp
  still stops walking; Damp then makes the motors passive as the low-level bridge's damping does (the robot
  sinks to the ground: the same as the Go2 remote's emergency damping). Latched: after release, nothing moves
  until stand_up or recovery_stand.
- Requests (services): damp (StopMove, Damp), stand_down (StopMove, StandDown), stand_up (StandUp, then
  BalanceStand after `stand_up_settle_s`), recovery_stand (RecoveryStand, then BalanceStand). Move resumes once
  BalanceStand is sent.
- The robot's answers (status code per api id) are kept for /diagnostics: a non-zero answer is WARN, to
  StopMove or Damp it is ERROR (the stop path failed) until that call is answered 0.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from go2_bridge.sport_api import (
    SportApiConfig,
    SportRequest,
    api_config,
    body_height,
    euler,
    gait_request,
    move,
    request,
)
from more_common.action_contract import (
    ACTION_NAMES,
    DEFAULT_HIGH,
    DEFAULT_LOW,
    GAIT_SLICE,
    INDEX,
    STAND_COMMAND,
    TERMINATE,
    ActionSpec,
    InvalidActionError,
    snap_gait,
)

MAX_MOVE_RATE_HZ = 50.0  # the fastest rate Unitree's examples send Move at
TIME_EPS = 1e-9  # [s] clock arithmetic slack (0.15 - 0.1 < 0.05 in floating point)
IGNORED_TOLERANCE = 0.02  # a dim is "asked for" this share of its contract range away from the stand command
VELOCITY = ("vx", "vy", "wz")
ALWAYS_IGNORED = ("step_frequency", "stance_width", "footswing_height")
SAFETY_CALLS = ("stop_move", "damp")
REQUESTS = ("stand_up", "stand_down", "damp", "recovery_stand")


class State(enum.Enum):
    READY = "READY"  # standing under the Go2's locomotion: Move while commands are fresh
    STANDING_UP = "STANDING_UP"  # StandUp / RecoveryStand sent; BalanceStand follows after stand_up_settle_s
    DOWN = "DOWN"  # stood down or damped on request: no Move until stand_up / recovery_stand
    ESTOP = "ESTOP"  # StopMove + Damp sent; latched until the e-stop is released and stand_up / recovery_stand


class Level(enum.IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


def _limits(name: str, value: tuple[float, float], contains_zero: bool = True) -> None:
    lo, hi = value
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and (not contains_zero or lo <= 0.0 <= hi)):
        raise ValueError(f"{name} must be finite with low < high and low <= 0 <= high, got [{lo}, {hi}]")


@dataclass(frozen=True)
class SportConfig:
    move_rate_hz: float = 20.0
    command_timeout_s: float = 0.5
    vx_limits: tuple[float, float] = (-1.0, 1.0)  # [m/s]
    vy_limits: tuple[float, float] = (-0.6, 0.6)  # [m/s]
    wz_limits: tuple[float, float] = (-1.0, 1.0)  # [rad/s]
    posture: bool = True  # send pitch (Euler) and, where offered, body height
    pitch_limits: tuple[float, float] = (-0.4, 0.4)  # [rad]
    body_height_limits: tuple[float, float] = (-0.18, 0.03)  # [m] offset from the default standing height
    posture_rate_hz: float = 2.0
    pitch_deadband_rad: float = 0.02
    body_height_deadband_m: float = 0.01
    switch_gaits: bool = False
    gait_hold_s: float = 1.0
    stand_up_settle_s: float = 2.0
    estop_repeat_s: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.move_rate_hz) and 0.0 < self.move_rate_hz <= MAX_MOVE_RATE_HZ):
            raise ValueError(f"move_rate_hz must be in (0, {MAX_MOVE_RATE_HZ:.0f}], got {self.move_rate_hz}")
        for name in ("command_timeout_s", "posture_rate_hz", "stand_up_settle_s", "estop_repeat_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
        for name in ("pitch_deadband_rad", "body_height_deadband_m", "gait_hold_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}")
        for name in ("vx_limits", "vy_limits", "wz_limits", "pitch_limits", "body_height_limits"):
            _limits(name, getattr(self, name))


def command_spec(config: SportConfig) -> ActionSpec:
    """The contract's bounds with the backend's limits on the dims it sends."""
    low, high = list(DEFAULT_LOW), list(DEFAULT_HIGH)
    for name, (lo, hi) in (
        ("vx", config.vx_limits), ("vy", config.vy_limits), ("wz", config.wz_limits),
        ("pitch", config.pitch_limits), ("body_height", config.body_height_limits),
    ):  # fmt: skip
        low[INDEX[name]], high[INDEX[name]] = lo, hi
    return ActionSpec(low=tuple(low), high=tuple(high))


class SportCore:
    def __init__(self, config: SportConfig | None = None, api: SportApiConfig | None = None) -> None:
        self.config = c = config or SportConfig()
        self.api = api or api_config()
        self.spec = command_spec(c)
        self._period = 1.0 / c.move_rate_hz
        self._posture_period = 1.0 / c.posture_rate_hz
        self.height_offered = self.api.ids.body_height is not None
        followed = [*VELOCITY, "terminate"]
        if c.posture:
            followed.append("pitch")
            if self.height_offered:
                followed.append("body_height")
        if c.switch_gaits:
            followed.extend(ACTION_NAMES[GAIT_SLICE])
        self.followed = tuple(n for n in ACTION_NAMES if n in followed)
        self.state = State.READY
        self.reason = "no command yet"
        self.estop = False
        self.sent: Counter[str] = Counter()
        self.answers: dict[str, tuple[int, int, int]] = {}  # name -> (last code, answers, non-zero answers)
        self.clip_count = 0
        self.clipped: tuple[str, ...] = ()
        self.ignored: tuple[str, ...] = ()
        self._pending: list[SportRequest] = []
        self._command: np.ndarray | None = None  # the newest valid command, after for_controller
        self._invalid: str | None = None  # why the newest command was refused
        self._command_time = -math.inf
        self._moving = False
        self._last_move = -math.inf
        self._last_posture = -math.inf
        self._pitch = 0.0  # last sent
        self._height = 0.0
        self.gait = self.api.gaits.default
        self._gait_want = self.gait
        self._gait_since = -math.inf
        self._balance_at = math.inf
        self._last_damp = -math.inf

    # -- inputs ---------------------------------------------------------------------------------------------
    def on_command(self, action: object, now: float) -> None:
        """A QuadrupedCommand as the contract's 12-vector (anything else is an invalid command)."""
        self._command_time = now
        try:
            raw = np.asarray(action, dtype=np.float64)
            if raw.shape != (len(ACTION_NAMES),):
                raise InvalidActionError(f"command must have {len(ACTION_NAMES)} values, got shape {raw.shape}")
            command = self.spec.for_controller(raw)
        except (InvalidActionError, TypeError, ValueError) as err:
            self._command, self._invalid, self.clipped, self.ignored = None, str(err), (), ()
            return
        self._command, self._invalid = command, None
        self.clipped = tuple(self.spec.out_of_range(raw))
        if any(n in self.clipped for n in (*VELOCITY, "pitch", "body_height")):
            self.clip_count += 1
        self.ignored = self._requested_but_ignored(command)

    def on_estop(self, active: bool, now: float) -> None:
        self.estop = bool(active)
        if self.estop and self.state is not State.ESTOP:
            self._stop("e-stop", State.ESTOP, "damp")
            self._last_damp = now

    def on_response(self, api_id: int, code: int) -> None:
        name = self.api.name_of(api_id)
        _, count, bad = self.answers.get(name, (0, 0, 0))
        self.answers[name] = (int(code), count + 1, bad + (code != 0))

    def request(self, what: str, now: float) -> tuple[bool, str]:
        """An operator request (a service): 'damp' | 'stand_down' | 'stand_up' | 'recovery_stand'."""
        if what not in REQUESTS:
            raise ValueError(f"unknown request {what!r}; known: {list(REQUESTS)}")
        if what == "damp":
            if self.state is State.ESTOP:
                self._pending += [self._call("stop_move"), self._call("damp")]
                return True, "StopMove, Damp sent (e-stop latched)"
            self._stop("damped on request", State.DOWN, "damp")
            return True, "StopMove, Damp sent"
        if self.estop:
            return False, "refused: the e-stop is active"
        if what == "stand_down":
            if self.state is State.ESTOP:
                return False, "refused: e-stop latched (stand_up or recovery_stand after releasing it)"
            self._stop("stood down on request", State.DOWN, "stand_down")
            return True, "StopMove, StandDown sent"
        # stand_up / recovery_stand: the robot gets up; BalanceStand hands it back to walking
        self._moving = False
        self._pending.append(self._call(what))
        self.state, self.reason = State.STANDING_UP, f"{what}: BalanceStand in {self.config.stand_up_settle_s:.1f} s"
        self._balance_at = now + self.config.stand_up_settle_s
        self._pitch = self._height = 0.0
        self.gait = self._gait_want = self.api.gaits.default
        return True, f"{'StandUp' if what == 'stand_up' else 'RecoveryStand'} sent; BalanceStand follows"

    # -- the step -------------------------------------------------------------------------------------------
    def step(self, now: float) -> list[SportRequest]:
        """The requests to send now, in order."""
        out, self._pending = self._pending, []
        if self.state is State.ESTOP:
            if self.estop and now - self._last_damp >= self.config.estop_repeat_s - TIME_EPS:
                out.append(self._call("damp"))
                self._last_damp = now
            return self._count(out)
        if self.state is State.STANDING_UP and now >= self._balance_at - TIME_EPS:
            out.append(self._call("balance_stand"))
            self.state, self.reason = State.READY, "standing (BalanceStand sent)"
            self._balance_at = math.inf
        if self.state is not State.READY:
            return self._count(out)
        command, why = self._drive(now)
        if command is None:
            if self._moving:
                out.append(self._call("stop_move"))
                out.extend(self._posture_to_nominal())
                self._moving = False
            self.reason = why
            return self._count(out)
        out.extend(self._gait_requests(command, now))
        out.extend(self._posture_requests(command, now))
        if now - self._last_move >= self._period - TIME_EPS:
            out.append(move(self.api, *command[[INDEX[n] for n in VELOCITY]]))
            self._last_move = now
            self._moving = True
        self.reason = "moving"
        return self._count(out)

    def exit_requests(self) -> list[SportRequest]:
        """What to send when the node stops: StopMove (the robot must not walk on with nobody commanding)."""
        return self._count([self._call("stop_move")])

    # -- internals ------------------------------------------------------------------------------------------
    def _call(self, name: str) -> SportRequest:
        return request(self.api, name)

    def _count(self, out: list[SportRequest]) -> list[SportRequest]:
        self.sent.update(r.name for r in out)
        return out

    def _stop(self, reason: str, state: State, then: str) -> None:
        self._pending += [self._call("stop_move"), self._call(then)]
        self._moving = False
        self.state, self.reason = state, reason
        self._balance_at = math.inf
        self._pitch = self._height = 0.0  # the firmware resets its posture when it damps / lies down

    def _drive(self, now: float) -> tuple[np.ndarray | None, str]:
        if now - self._command_time > self.config.command_timeout_s + TIME_EPS:
            return None, "no command yet" if self._command_time == -math.inf else "command timeout: stopped"
        if self._invalid is not None:
            return None, f"invalid: {self._invalid}: stopped"
        if self._command[TERMINATE] >= 0.5:
            return None, "terminate: stopped"
        return self._command, "moving"

    def _posture_requests(self, command: np.ndarray, now: float) -> list[SportRequest]:
        c = self.config
        if not c.posture or now - self._last_posture < self._posture_period - TIME_EPS:
            return []
        out = []
        pitch = float(command[INDEX["pitch"]])
        if abs(pitch - self._pitch) > c.pitch_deadband_rad:
            out.append(euler(self.api, 0.0, pitch, 0.0))
            self._pitch = pitch
        height = float(command[INDEX["body_height"]])
        if self.height_offered and abs(height - self._height) > c.body_height_deadband_m:
            out.append(body_height(self.api, height))
            self._height = height
        if out:
            self._last_posture = now
        return out

    def _posture_to_nominal(self) -> list[SportRequest]:
        out = []
        if self.config.posture and self._pitch != 0.0:
            out.append(euler(self.api, 0.0, 0.0, 0.0))
        if self.config.posture and self.height_offered and self._height != 0.0:
            out.append(body_height(self.api, 0.0))
        self._pitch = self._height = 0.0
        return out

    def _gait_requests(self, command: np.ndarray, now: float) -> list[SportRequest]:
        if not self.config.switch_gaits:
            return []
        want, _ = snap_gait(*command[GAIT_SLICE])
        if want != self._gait_want:
            self._gait_want, self._gait_since = want, now
        gaits = self.api.gaits
        if want == self.gait or now - self._gait_since < self.config.gait_hold_s - TIME_EPS or not gaits.offered(want):
            return []
        out = []
        leaving = gaits.call(self.gait)
        if leaving is not None and isinstance(leaving.data, bool):
            out.append(gait_request(self.api, leaving, enter=False))
        entering = gaits.call(want)
        if entering is not None:
            out.append(gait_request(self.api, entering))
        self.gait = want
        return out

    def _requested_but_ignored(self, command: np.ndarray) -> tuple[str, ...]:
        """Dims this command sets away from the stand command that are not done here (reported, not an error)."""
        out = []
        gait, _ = snap_gait(*command[GAIT_SLICE])
        if gait != self.api.gaits.default and not (self.config.switch_gaits and self.api.gaits.offered(gait)):
            out.append("gait")
        for name in ("body_height", "pitch", *ALWAYS_IGNORED):
            if name in self.followed:
                continue
            i = INDEX[name]
            if abs(command[i] - STAND_COMMAND[i]) > IGNORED_TOLERANCE * (DEFAULT_HIGH[i] - DEFAULT_LOW[i]):
                out.append(name)
        return tuple(out)

    # -- reporting ------------------------------------------------------------------------------------------
    def level(self, now: float) -> tuple[Level, str]:
        """The status level and message (state: reason, then what the robot refused)."""
        message = f"{self.state.value}: {self.reason}"
        refused = [f"{n} answered {code}" for n, (code, _, _) in sorted(self.answers.items()) if code != 0]
        if refused:
            message += " | robot: " + ", ".join(refused)
        fresh = now - self._command_time <= self.config.command_timeout_s
        if (fresh and self._invalid is not None) or any(self.answers.get(n, (0,))[0] != 0 for n in SAFETY_CALLS):
            return Level.ERROR, message
        if refused or self.state in (State.ESTOP, State.DOWN) or self.reason.startswith("command timeout"):
            return Level.WARN, message
        return Level.OK, message

    def values(self) -> dict[str, object]:
        out: dict[str, object] = {
            "state": self.state.value,
            "estop": str(self.estop).lower(),
            "firmware_api": self.api.firmware,
            "gait": self.gait,
            "dims_followed": ",".join(self.followed),
            "dims_not_followed": ",".join(n for n in ACTION_NAMES if n not in self.followed) or "none",
            "dims_requested_but_ignored": ",".join(self.ignored) or "none",
            "clipped_commands": self.clip_count,
            "clipped_dims": ",".join(self.clipped) or "none",
        }
        for name, count in sorted(self.sent.items()):
            out[f"sent.{name}"] = count
        for name, (code, count, bad) in sorted(self.answers.items()):
            out[f"answer.{name}"] = f"code {code} (answers {count}, non-zero {bad})"
        return out
