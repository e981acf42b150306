"""The Go2 remote as it arrives in LowState.wireless_remote (40 bytes), and its button combos.

Byte layout (unitree_ros2): keys uint16 at [2:4], lx float32 [4:8], rx [8:12], ry [12:16], ly [20:24].
Key bits: R1 0, L1 1, start 2, select 3, R2 4, L2 5, F1 6, F2 7, A 8, B 9, X 10, Y 11, up 12,
right 13, down 14, left 15.

A combo drives the robot only when it is held on purpose, never because of one bad frame: random
remote bytes (a corrupted radio packet, repeated in every LowState until the next packet) once stood
the robot up and left latched DAMPING. So (ComboDetector):
- a combo counts only after `hold_frames` consecutive valid frames; a frame dropped for its CRC or a
  remote frame whose sticks are not finite within [-1, 1] (`RemoteState.plausible`) is not valid and
  restarts every count;
- the combos that move the robot (stand_up, activate) or leave DAMPING (reset) need exactly their
  buttons and no other (a random key word has 16 bits: 1 in 65536 frames hits one mask exactly), reset
  held ten times longer (`reset_hold_frames`, 1 s at 500 Hz: leaving DAMPING must be deliberate);
- damp fires with its buttons held whatever else is pressed, after the short `damp_hold_frames`: a false
  damp is safe, a missed one is not.
A combo fires once per hold (on the frame its count is reached); damping wins if several fire together.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

KEY_BITS: dict[str, int] = {
    "R1": 0, "L1": 1, "start": 2, "select": 3, "R2": 4, "L2": 5, "F1": 6, "F2": 7,
    "A": 8, "B": 9, "X": 10, "Y": 11, "up": 12, "right": 13, "down": 14, "left": 15,
}  # fmt: skip

# Bridge requests bound to the remote (operator documentation: docs/deployment.md).
DEFAULT_COMBOS: dict[str, tuple[str, ...]] = {
    "damp": ("L2", "B"),
    "stand_up": ("L2", "A"),
    "activate": ("L1", "A"),
    "reset": ("L2", "X"),
}
# Priority when several combos fire on one cycle: the safest first.
REQUEST_PRIORITY: tuple[str, ...] = ("damp", "reset", "stand_up", "activate")
# The remote reports its sticks normalised to [-1, 1]; a little slack for rounding.
STICK_MAX = 1.0 + 1e-3

# Defaults at the Go2's 500 Hz LowState (docs/robot.md gives the reasons).
HOLD_FRAMES = 50  # 100 ms: spans several radio packets, far shorter than a deliberate press
DAMP_HOLD_FRAMES = 10  # 20 ms: damping must be quick; a false one is safe
RESET_HOLD_FRAMES = 500  # 1 s: leaving DAMPING is a decision


@dataclass(frozen=True)
class RemoteState:
    keys: int
    lx: float
    ly: float
    rx: float
    ry: float
    plausible: bool = True  # sticks were finite and within [-1, 1] before cleaning

    def held(self, button: str) -> bool:
        return bool(self.keys >> KEY_BITS[button] & 1)


def parse_remote(data: bytes) -> RemoteState:
    """Decode the 40 remote bytes; short input is zero-padded, non-finite sticks read as 0."""
    raw = bytes(data[:40]).ljust(40, b"\0")
    (keys,) = struct.unpack_from("<H", raw, 2)
    lx, rx, ry = struct.unpack_from("<3f", raw, 4)
    (ly,) = struct.unpack_from("<f", raw, 20)
    sticks = (lx, ly, rx, ry)
    plausible = all(math.isfinite(v) and abs(v) <= STICK_MAX for v in sticks)

    def clean(v: float) -> float:
        return v if math.isfinite(v) else 0.0

    return RemoteState(keys=keys, lx=clean(lx), ly=clean(ly), rx=clean(rx), ry=clean(ry), plausible=plausible)


def encode_remote(keys: int = 0, lx: float = 0.0, ly: float = 0.0, rx: float = 0.0, ry: float = 0.0) -> bytes:
    """Build the 40 bytes for given keys and sticks (simulator and tests)."""
    raw = bytearray(40)
    struct.pack_into("<H", raw, 2, keys)
    struct.pack_into("<3f", raw, 4, lx, rx, ry)
    struct.pack_into("<f", raw, 20, ly)
    return bytes(raw)


def keys_of(*buttons: str) -> int:
    """The key bitmask with `buttons` held."""
    mask = 0
    for b in buttons:
        mask |= 1 << KEY_BITS[b]
    return mask


class ComboDetector:
    """Turns successive remote frames into at most one request per frame (see the module docstring)."""

    def __init__(
        self,
        combos: dict[str, tuple[str, ...]] | None = None,
        hold_frames: int = HOLD_FRAMES,
        damp_hold_frames: int = DAMP_HOLD_FRAMES,
        reset_hold_frames: int = RESET_HOLD_FRAMES,
    ) -> None:
        self.combos = {name: keys_of(*buttons) for name, buttons in (combos or DEFAULT_COMBOS).items()}
        unknown = set(self.combos) - set(REQUEST_PRIORITY)
        if unknown:
            raise ValueError(f"unknown remote request(s) {sorted(unknown)}; known: {list(REQUEST_PRIORITY)}")
        for label, n in (("hold_frames", hold_frames), ("damp_hold_frames", damp_hold_frames),
                         ("reset_hold_frames", reset_hold_frames)):  # fmt: skip
            if not (isinstance(n, int) and n >= 1):
                raise ValueError(f"{label} must be an integer >= 1, got {n!r}")
        if reset_hold_frames < hold_frames:
            raise ValueError(f"reset_hold_frames ({reset_hold_frames}) must be >= hold_frames ({hold_frames})")
        self.frames = {name: hold_frames for name in self.combos}
        if "damp" in self.frames:
            self.frames["damp"] = damp_hold_frames
        if "reset" in self.frames:
            self.frames["reset"] = reset_hold_frames
        self._count = dict.fromkeys(self.combos, 0)
        self.rejected = 0  # implausible remote frames

    def invalid(self) -> None:
        """A frame that cannot be trusted (dropped LowState): every hold starts again."""
        for name in self._count:
            self._count[name] = 0

    def held(self, name: str, keys: int) -> bool:
        mask = self.combos[name]
        return keys & mask == mask if name == "damp" else keys == mask

    def update(self, remote: RemoteState) -> str | None:
        if not remote.plausible:
            self.rejected += 1
            self.invalid()
            return None
        fired = []
        for name in self.combos:
            self._count[name] = self._count[name] + 1 if self.held(name, remote.keys) else 0
            if self._count[name] == self.frames[name]:
                fired.append(name)
        for name in REQUEST_PRIORITY:
            if name in fired:
                return name
        return None
