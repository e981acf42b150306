"""Which go2_bridge service a simulation calls next to get the simulated Go2 walking, and again after a fall.

Simulation only: this module lives in the simulation-only package (never on the robot's image), and only the
simulated go2 stack uses it (`more-stack sim --embodiment go2`, the runner's process; `sim_go2.launch.py`, the
world node with `bring_up_bridge`). On a robot a person stands the Go2 up and activates it (docs/deployment.md).

The bridge goes through its real state machine: PASSIVE -> stand_up -> STAND_UP (the interpolation) -> activate
-> ACTIVE; after a fall the bridge damps (tilt), and `reset` (DAMPING -> PASSIVE, refused until min_damping_s has
passed) starts the sequence again. The bridge refuses a request that is early (no LowState heard yet, the
interpolation not done, no fresh targets, still tilted): each is retried every `retry_s`, one call at a time.
"""

from __future__ import annotations

from more_ros import names

NEXT_CALL = {"PASSIVE": names.BRIDGE_STAND_UP, "STAND_UP": names.BRIDGE_ACTIVATE, "DAMPING": names.BRIDGE_RESET}


class BridgeBringup:
    def __init__(self, retry_s: float = 0.5, recover: bool = True) -> None:
        if not retry_s > 0:
            raise ValueError(f"retry_s must be > 0, got {retry_s!r}")
        self.retry_s, self.recover = retry_s, recover
        self.state = ""
        self.pending: str | None = None
        self._last_call = -float("inf")
        self.calls: dict[str, int] = {}  # service -> calls made
        self.accepted: dict[str, int] = {}  # service -> calls the bridge accepted
        self.dampings = 0  # times the bridge entered DAMPING

    def on_state(self, text: str) -> None:
        """The bridge's latched "STATE: reason"."""
        state = text.split(":", 1)[0].strip()
        if state == "DAMPING" and self.state != "DAMPING":
            self.dampings += 1
        self.state = state

    def next_call(self, now: float) -> str | None:
        """The service to call now (the caller then reports `on_result`), or None."""
        if self.pending is not None or now - self._last_call < self.retry_s:
            return None
        service = NEXT_CALL.get(self.state)
        if service is None or (service == names.BRIDGE_RESET and not self.recover):
            return None
        self.pending, self._last_call = service, now
        self.calls[service] = self.calls.get(service, 0) + 1
        return service

    def on_result(self, service: str, success: bool) -> None:
        if success:
            self.accepted[service] = self.accepted.get(service, 0) + 1
        self.pending = None

    def summary(self) -> dict[str, object]:
        return {
            "state": self.state,
            "calls": dict(self.calls),
            "accepted": dict(self.accepted),
            "dampings": self.dampings,
        }
