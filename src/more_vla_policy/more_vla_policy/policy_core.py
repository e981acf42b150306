"""The policy node's decisions, without ROS: image checks, staleness, instruction, enable/stop logic, pacing.

[Contract]
- `PolicyCore.step(now)` makes one decision from the newest image and the current instruction and returns a
  `Decision`: the command to publish (always a valid, executable 12-vector), the decoder's bins and Q-values
  when the model ran, the state (PolicyStatus.STATE_*) and, for every stop, the fault that caused it.
- Safety: the command is the stop command (zero velocities, stand, `action_contract.stand_command`) unless the
  core is enabled, an image newer than `image_timeout_s` is present, the instruction has visible content
  (`instruction_fault`), the image is well formed (encoding, size, step, data length) and the model ran
  without error and produced a finite action. Nothing here raises on bad input: every failure becomes a stop
  decision naming the fault. Stops carry image stamp 0 (they are not computed from an image).
- `PolicyCore.watchdog(now)` is the stop that does not wait for the model: None while the newest image is
  fresh, else the stop decision for "no image" / "stale image" (or DISABLED / DONE, same precedence as step).
- `PolicyCore.finish(decision, now)`, called right before publishing: a decision computed from an image that
  is older than `image_timeout_s` by now (slow inference) becomes a stop naming it. Calling watchdog and
  finish under one lock with the publishing keeps commands ordered: once a stop for a stale image is out, no
  model command from that image or an older one can follow (its image is older still).
- Only the newest frame is kept (`submit_image` replaces the previous one): a slow model never works through
  a backlog of old frames. `Pacer` says when a decision may start (fresh frame, at most rate_hz).
- Terminate: a decoded terminate yields STATE_DONE and a standing command with terminate set. With
  `hold_on_terminate` the core stays DONE (standing) until the instruction changes or it is re-enabled.
"""

from __future__ import annotations

import math
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from more_common.action_contract import DEFAULT_SPEC, TERMINATE, ActionSpec, InvalidActionError, stand_command
from more_ros.convert import MAX_STAMP_NS

# PolicyStatus states (the numbers are more_msgs/PolicyStatus's constants; kept here so the core needs no ROS).
STATE_DISABLED = 0
STATE_RUNNING = 1
STATE_FAULT = 2
STATE_DONE = 3
STATE_NAMES = {STATE_DISABLED: "disabled", STATE_RUNNING: "running", STATE_FAULT: "fault", STATE_DONE: "done"}

# Channels and whether the first three are stored blue-first, per accepted sensor_msgs/Image encoding.
ENCODINGS: dict[str, tuple[int, bool]] = {
    "rgb8": (3, False),
    "bgr8": (3, True),
    "rgba8": (4, False),
    "bgra8": (4, True),
}
MAX_SIDE = 8192  # no camera this stack meets is larger; a bigger header is corrupt, not an image


# -- instructions -------------------------------------------------------------------------------------
# Terminal escape sequences (CSI such as "\x1b[2J", OSC/DCS/APC strings up to their terminator, two-character
# escapes): they draw nothing, and the printable bytes inside them ("[2J") are not an instruction.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -/]*[0-~]",
    re.DOTALL,
)
# Unicode categories that show nothing: controls, format characters (zero-width spaces and joiners, the BOM
# U+FEFF, soft hyphen), surrogates, and the separators (spaces, line and paragraph separators).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
# Code points outside those categories that still show no content: the replacement characters that invalid
# UTF-8 decodes to (U+FFFD) and U+FFFC, Hangul fillers and the braille blank (letters/symbols drawn empty),
# the combining grapheme joiner and the variation selectors (modifiers with nothing to modify).
INVISIBLE_CHARS = frozenset(
    "\ufffd\ufffc\u115f\u1160\u3164\uffa0\u2800\u034f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def visible_text(text: str) -> str:
    """The characters of `text` that show something: escape sequences and invisible characters removed."""
    return "".join(
        c
        for c in _ESCAPES.sub("", text)
        if c not in INVISIBLE_CHARS and unicodedata.category(c) not in INVISIBLE_CATEGORIES
    )


def instruction_fault(text: str, max_chars: int) -> str:
    """Why `text` cannot be an instruction ("" if it can): nothing visible in it, or longer than max_chars."""
    if not visible_text(text):
        return "empty instruction" if not text.strip() else f"empty instruction: no visible characters in {text[:60]!a}"
    if len(text) > max_chars:
        return f"instruction too long: {len(text)} > {max_chars} characters"
    return ""


class ImageError(ValueError):
    """An image message that cannot be used: wrong encoding, size, step or data length."""


@dataclass(frozen=True)
class RawImage:
    """The fields of a sensor_msgs/Image that matter, copied out of the message (no ROS types)."""

    encoding: str
    height: int
    width: int
    step: int
    data: bytes | bytearray | memoryview | np.ndarray
    stamp_ns: int = 0  # header stamp of the image [ns]; copied into the command's header
    is_bigendian: int = 0


def image_to_rgb(image: RawImage) -> np.ndarray:
    """Check an image's fields and return it as an HxWx3 uint8 RGB array (a copy). Raises ImageError."""
    if not 0 <= int(image.stamp_ns) <= MAX_STAMP_NS:  # the command carries it: it must be a time we can stamp
        raise ImageError(f"stamp {int(image.stamp_ns)} ns is before the epoch or past builtin_interfaces/Time's range")
    if image.encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding {image.encoding!r} (accepted: {sorted(ENCODINGS)})")
    channels, blue_first = ENCODINGS[image.encoding]
    h, w, step = int(image.height), int(image.width), int(image.step)
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise ImageError(f"bad size {w}x{h} (each side must be in 1..{MAX_SIDE})")
    row = w * channels
    if step < row:
        raise ImageError(f"step {step} is shorter than a row of {w} {image.encoding} pixels ({row} bytes)")
    buf = np.frombuffer(image.data, dtype=np.uint8) if not isinstance(image.data, np.ndarray) else image.data
    buf = buf.reshape(-1).view(np.uint8) if buf.dtype != np.uint8 else buf.reshape(-1)
    if buf.size != step * h:
        raise ImageError(f"data length {buf.size} != step * height = {step} * {h} = {step * h}")
    rows = buf.reshape(h, step)[:, :row].reshape(h, w, channels)
    rgb = rows[:, :, 2::-1] if blue_first else rows[:, :, :3]
    return np.ascontiguousarray(rgb)


def rgb_to_raw(rgb: np.ndarray, stamp_ns: int = 0, encoding: str = "rgb8") -> RawImage:
    """The inverse of image_to_rgb for tests and sources: an HxWx3 uint8 array as a RawImage."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"expected an HxWx3 uint8 array, got {arr.dtype} {arr.shape}")
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding {encoding!r}")
    channels, blue_first = ENCODINGS[encoding]
    px = arr[:, :, ::-1] if blue_first else arr
    if channels == 4:
        px = np.concatenate([px, np.full((*arr.shape[:2], 1), 255, np.uint8)], axis=2)
    h, w = arr.shape[:2]
    return RawImage(encoding, h, w, w * channels, np.ascontiguousarray(px).tobytes(), stamp_ns)


class Policy(Protocol):
    """What the core needs from a model (more_model's MoRE policy satisfies it)."""

    action_spec: ActionSpec

    def decode(self, images: list[np.ndarray], instructions: list[str]) -> Any: ...


@dataclass(frozen=True)
class CoreConfig:
    """Safety settings of the decision loop; each is a node parameter of the same name."""

    image_timeout_s: float = 0.5
    max_instruction_chars: int = 1000
    hold_on_terminate: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.image_timeout_s) and self.image_timeout_s > 0):
            raise ValueError(f"image_timeout_s must be > 0, got {self.image_timeout_s}")
        if self.max_instruction_chars < 1:
            raise ValueError(f"max_instruction_chars must be >= 1, got {self.max_instruction_chars}")


@dataclass(frozen=True)
class Decision:
    """One decision: what to publish and why."""

    action: np.ndarray  # executable 12-vector (for_controller applied), stand command on any stop
    state: int
    fault: str = ""
    bins: np.ndarray | None = None  # decoder bins (12 int) when the model ran
    q_values: np.ndarray | None = None  # decoder Q-values (12 float) when the model ran
    raw_action: np.ndarray | None = None  # decoder bin centres before for_controller
    image_stamp_ns: int = 0  # stamp of the image the command was computed from (0 for stops)
    image_age_s: float = math.nan  # age of its image when it started [s] (at publish: stale-at-publish stops)
    inference_ms: float = math.nan
    instruction: str = ""
    image_seq: int = 0  # which submitted image (PolicyCore.image_seq) the decision read (0: none)
    image_received_s: float = math.nan  # when that image was submitted (the core's clock) [s]
    convert_ms: float = math.nan  # image checks and conversion to RGB [ms]
    image: np.ndarray | None = field(default=None, repr=False)  # the RGB frame used (for the annotated image)
    reasoning: str = ""  # what a reasoning model wrote before its actions ("A2C5.C5."; empty without reasoning)

    @property
    def is_stop(self) -> bool:
        return self.state in (STATE_DISABLED, STATE_FAULT)


def _stop(state: int, fault: str, **kw: Any) -> Decision:
    return Decision(action=stand_command(), state=state, fault=fault, **kw)


class RateMeter:
    """Measured event rate over a sliding window of the last `window` intervals [Hz]; NaN until two events."""

    def __init__(self, window: int = 20) -> None:
        self._times: deque[float] = deque(maxlen=window + 1)

    def tick(self, now: float) -> None:
        self._times.append(now)

    @property
    def rate_hz(self) -> float:
        if len(self._times) < 2:
            return math.nan
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else math.nan


class PolicyCore:
    """Thread-safe: images, instructions and enable come from ROS callbacks, `step` runs on a worker thread."""

    def __init__(
        self,
        policy: Policy,
        config: CoreConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self.config = config or CoreConfig()
        self.spec: ActionSpec = getattr(policy, "action_spec", DEFAULT_SPEC)
        self._clock = clock
        self._lock = threading.Lock()
        self._image: RawImage | None = None
        self._image_received = -math.inf
        self._image_seq = 0
        self._instruction = ""
        self._enabled = False
        self._done = False
        self.decisions = 0
        self.rate = RateMeter()
        self.camera_rate = RateMeter()  # of submitted images

    # -- inputs (any thread) -----------------------------------------------------------------------
    def submit_image(self, image: RawImage, received_at: float | None = None) -> None:
        with self._lock:
            self._image = image
            self._image_received = self._clock() if received_at is None else received_at
            self._image_seq += 1
            self.camera_rate.tick(self._image_received)

    @property
    def image_seq(self) -> int:
        """Counts submitted images (the worker waits for it to change to decide on a new frame)."""
        return self._image_seq

    def newest_frame(self) -> tuple[int, float]:
        """(image_seq, receive time) of the newest image; (0, -inf) before the first."""
        with self._lock:
            return self._image_seq, self._image_received

    def now(self) -> float:
        return self._clock()

    def set_instruction(self, text: str) -> None:
        with self._lock:
            if text != self._instruction:
                self._done = False
            self._instruction = text

    @property
    def instruction(self) -> str:
        return self._instruction

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self._enabled = bool(enabled)
            self._done = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    # -- the decision (worker thread) --------------------------------------------------------------
    def step(self, now: float | None = None) -> Decision:
        now = self._clock() if now is None else now
        with self._lock:
            image, received, seq, instruction = self._image, self._image_received, self._image_seq, self._instruction
            enabled, done = self._enabled, self._done
        decision = self._decide(now, image, received, seq, instruction, enabled, done)
        if decision.state == STATE_DONE and self.config.hold_on_terminate:
            with self._lock:
                if self._instruction == instruction:
                    self._done = True
        self.decisions += 1
        self.rate.tick(now)
        return decision

    def watchdog(self, now: float | None = None) -> Decision | None:
        """None while the newest image is fresh (decisions are the worker's); else the stop to publish now."""
        now = self._clock() if now is None else now
        with self._lock:
            image, received, seq, instruction = self._image, self._image_received, self._image_seq, self._instruction
            enabled, done = self._enabled, self._done
        if image is not None and now - received <= self.config.image_timeout_s:
            return None
        return self._decide(now, image, received, seq, instruction, enabled, done)  # never reaches the model

    def finish(self, decision: Decision, now: float | None = None) -> Decision:
        """The decision to publish at `now`: a command computed from an image that has become older than
        image_timeout_s (the model took too long) is replaced by a stop naming it."""
        now = self._clock() if now is None else now
        age = now - decision.image_received_s
        if decision.is_stop or not age > self.config.image_timeout_s:  # NaN (no image) compares False
            return decision
        return _stop(
            STATE_FAULT,
            f"stale image at publish: decided on an image {age:.3f} s old > image_timeout_s "
            f"{self.config.image_timeout_s} (inference {decision.inference_ms:.0f} ms)",
            image_age_s=age,
            inference_ms=decision.inference_ms,
            instruction=decision.instruction,
            image_seq=decision.image_seq,
            image_received_s=decision.image_received_s,
        )

    def _decide(
        self,
        now: float,
        image: RawImage | None,
        received: float,
        seq: int,
        instruction: str,
        enabled: bool,
        done: bool,
    ) -> Decision:
        if not enabled:
            return _stop(STATE_DISABLED, "", instruction=instruction)
        if done:
            return Decision(action=_terminated_stand(), state=STATE_DONE, instruction=instruction)
        if image is None:
            return _stop(STATE_FAULT, "no image received yet", instruction=instruction)
        age = now - received
        frame = {"image_age_s": age, "image_seq": seq, "image_received_s": received}
        if age > self.config.image_timeout_s:
            return _stop(
                STATE_FAULT,
                f"stale image: {age:.3f} s old > image_timeout_s {self.config.image_timeout_s}",
                instruction=instruction,
                **frame,
            )
        fault = instruction_fault(instruction, self.config.max_instruction_chars)
        if fault:
            return _stop(STATE_FAULT, fault, instruction=instruction[:80], **frame)
        start = time.perf_counter()
        try:
            rgb = image_to_rgb(image)
        except ImageError as err:
            return _stop(STATE_FAULT, f"malformed image: {err}", instruction=instruction, **frame)
        convert_ms = (time.perf_counter() - start) * 1e3
        common = {**frame, "instruction": instruction, "convert_ms": convert_ms}
        start = time.perf_counter()
        try:
            out = self._policy.decode([rgb], [instruction])
            raw = np.asarray(out.actions, dtype=np.float64)[0]
            bins = np.asarray(out.bins, dtype=np.int64)[0]
            q_values = np.asarray(out.q_values, dtype=np.float32)[0]
            written = getattr(out, "reasoning", None)
            reasoning = str(written[0]) if written else ""
        except Exception as err:  # any model failure must become a stop, never a crash
            ms = (time.perf_counter() - start) * 1e3
            return _stop(STATE_FAULT, f"inference failed: {type(err).__name__}: {err}", inference_ms=ms, **common)
        ms = (time.perf_counter() - start) * 1e3
        try:
            if bins.shape != (12,) or q_values.shape != (12,):
                raise InvalidActionError(f"decoder returned bins {bins.shape} and q_values {q_values.shape}")
            action, state = executable_action(raw, self.spec)
        except InvalidActionError as err:
            return _stop(STATE_FAULT, f"invalid action from the model: {err}", inference_ms=ms, **common)
        return Decision(
            action=action,
            state=state,
            bins=bins,
            q_values=q_values,
            raw_action=raw,
            inference_ms=ms,
            image=rgb,
            image_stamp_ns=image.stamp_ns,
            reasoning=reasoning,
            **common,
        )


class Pacer:
    """When the decision worker may start: on a fresh frame, self-synchronised to the camera, <= rate_hz.

    A decision starts on a frame that arrived while the decision slot was open, at its arrival - or, if it
    came in while the previous decision was still running, right after that one, provided it waited less than
    a third of the camera's frame interval for it (`frame_interval`; with the interval not yet known, not at
    all). Such a frame is skipped otherwise: deciding on the next, fresh frame then gives commands whose
    information is younger on average (a frame that waited w, against the next one a frame interval F later:
    the command in force is on average w + decode / 2 older against (F - w + decode) / 2, and w < F / 3 is
    where using it wins). After a decision that started at t the next slot opens at
    max(previous opening + period, t + period / 2): phase-locked to the slots while frames come early enough
    (a 30 fps camera gives exactly rate_hz), following the camera when its frames come later, so a camera at
    rate_hz is decided frame by frame as long as its arrival times vary by less than half a period, and a
    slower one always is (while decisions are shorter than its frame interval). Hence no two decisions are
    closer than half a period, and a window of T seconds holds at most T * rate_hz + 1.5 of them.
    """

    def __init__(self, rate_hz: float) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.period = 1.0 / rate_hz
        self.min_interval = 0.5 * self.period
        self.opens_at = -math.inf

    def ready(self, frame_received: float, free_since: float, frame_interval: float = math.nan) -> bool:
        """May a decision start on the frame received at `frame_received`, the worker being free since
        `free_since` (the end of its previous decision), frames coming every `frame_interval` seconds?"""
        waited = free_since - frame_received
        max_wait = frame_interval / 3 if math.isfinite(frame_interval) else 0.0
        return frame_received >= self.opens_at and (waited <= 0 or waited < max_wait)

    def started(self, now: float) -> None:
        self.opens_at = max(self.opens_at + self.period, now + self.min_interval)


def executable_action(raw: np.ndarray, spec: ActionSpec = DEFAULT_SPEC) -> tuple[np.ndarray, int]:
    """The command published for a decoded action, and the state: (for_controller(raw), RUNNING), or
    (standing with terminate set, DONE) when the decoder chose terminate. Raises InvalidActionError."""
    action = spec.for_controller(raw)
    if action[TERMINATE] >= 0.5:
        return _terminated_stand(), STATE_DONE
    return action, STATE_RUNNING


def _terminated_stand() -> np.ndarray:
    action = stand_command()
    action[TERMINATE] = 1.0
    return action


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile q in [0, 100] of the finite values (NaN if none)."""
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else math.nan
