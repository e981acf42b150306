"""The Go2 remote as it arrives in LowState.wireless_remote (40 bytes), and its button combos.

Byte layout (unitree_ros2): keys uint16 at [2:4], lx float32 [4:8], rx [8:12], ry [12:16], ly [20:24].
Key bits: R1 0, L1 1, start 2, select 3, R2 4, L2 5, F1 6, F2 7, A 8, B 9, X 10, Y 11, up 12,
right 13, down 14, left 15.

Combos fire once on the cycle where all their buttons become held (a rising edge), so holding a
combo does not repeat it. Damping wins if several fire together.
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


@dataclass(frozen=True)
class RemoteState:
    keys: int
    lx: float
    ly: float
    rx: float
    ry: float

    def held(self, button: str) -> bool:
        return bool(self.keys >> KEY_BITS[button] & 1)


def parse_remote(data: bytes) -> RemoteState:
    """Decode the 40 remote bytes; short input is zero-padded, non-finite sticks read as 0."""
    raw = bytes(data[:40]).ljust(40, b"\0")
    (keys,) = struct.unpack_from("<H", raw, 2)
    lx, rx, ry = struct.unpack_from("<3f", raw, 4)
    (ly,) = struct.unpack_from("<f", raw, 20)

    def clean(v: float) -> float:
        return v if math.isfinite(v) else 0.0

    return RemoteState(keys=keys, lx=clean(lx), ly=clean(ly), rx=clean(rx), ry=clean(ry))


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
    """Turns successive key masks into at most one request per cycle (rising edges only)."""

    def __init__(self, combos: dict[str, tuple[str, ...]] | None = None) -> None:
        self.combos = {name: keys_of(*buttons) for name, buttons in (combos or DEFAULT_COMBOS).items()}
        unknown = set(self.combos) - set(REQUEST_PRIORITY)
        if unknown:
            raise ValueError(f"unknown remote request(s) {sorted(unknown)}; known: {list(REQUEST_PRIORITY)}")
        self._prev_keys = 0

    def update(self, keys: int) -> str | None:
        fired = [name for name, mask in self.combos.items() if keys & mask == mask and self._prev_keys & mask != mask]
        self._prev_keys = keys
        for name in REQUEST_PRIORITY:
            if name in fired:
                return name
        return None
