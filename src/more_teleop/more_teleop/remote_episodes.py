"""Go2 remote (LowState.wireless_remote, decoded by go2_bridge.remote) -> episode events (pure).

    R2 + Y  start      R2 + A  stop, success      R2 + B  stop, failure      R2 + X  discard

R2 is the modifier because the bridge's combos all use L1 or L2 (docs/deployment.md): none of these is a bridge
combo, and the bridge's damp combo (L2 + B, whatever else is held) still wins when L2 is pressed too. As in the
bridge (go2_bridge.remote.ComboDetector), an event needs exactly its buttons, held for `hold_frames` consecutive
plausible frames (a corrupted radio packet repeats in every LowState until the next one), and fires once per hold.
"""

from __future__ import annotations

from go2_bridge.remote import RemoteState, keys_of

EPISODE_COMBOS: dict[str, tuple[str, ...]] = {
    "start": ("R2", "Y"),
    "success": ("R2", "A"),
    "failure": ("R2", "B"),
    "discard": ("R2", "X"),
}
HOLD_FRAMES = 100  # 0.2 s of the Go2's 500 Hz LowState: a deliberate press, never one bad packet


class RemoteEpisodeButtons:
    def __init__(self, hold_frames: int = HOLD_FRAMES) -> None:
        if not (isinstance(hold_frames, int) and hold_frames >= 1):
            raise ValueError(f"hold_frames must be an integer >= 1, got {hold_frames!r}")
        self.hold_frames = hold_frames
        self._masks = {event: keys_of(*buttons) for event, buttons in EPISODE_COMBOS.items()}
        self._count = dict.fromkeys(self._masks, 0)
        self.rejected = 0

    def update(self, remote: RemoteState) -> str | None:
        """One remote frame; the event whose hold completes on it, else None."""
        if not remote.plausible:
            self.rejected += 1
            self._count = dict.fromkeys(self._masks, 0)
            return None
        fired = None
        for event, mask in self._masks.items():
            self._count[event] = self._count[event] + 1 if remote.keys == mask else 0
            if self._count[event] == self.hold_frames:
                fired = event
        return fired
