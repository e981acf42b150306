"""Releasing the Go2's sport mode before low-level control (pure sequence; the node does the I/O).

The Go2's own locomotion controller ("sport mode", run by the motion switcher service) and a LowCmd
stream must never drive the motors at the same time. Unitree's low-level examples release it first:
    repeat: CheckMode (motion switcher 1001) -> if the reported mode name is empty: done
            else StandDown (sport API 1005, the robot lies down), wait, ReleaseMode (switcher 1003), wait
The bridge runs this only when started with release_sport_mode:=true, and publishes no LowCmd until
it reports DONE. Without the flag the operator releases sport mode (docs/deployment.md).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

CHECK_MODE = 1001
RELEASE_MODE = 1003
SPORT_STAND_DOWN = 1005


class Phase(enum.Enum):
    CHECK = "CHECK"  # waiting for a CheckMode response
    STAND_DOWN = "STAND_DOWN"  # StandDown sent, waiting for the robot to lie down
    RELEASE = "RELEASE"  # ReleaseMode sent, waiting for the switcher
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ApiRequest:
    service: str  # "motion_switcher" or "sport"
    api_id: int
    parameter: str = ""


class SportModeRelease:
    def __init__(
        self, max_attempts: int = 5, response_timeout_s: float = 2.0, stand_down_s: float = 3.0,
        release_wait_s: float = 2.0,
    ) -> None:  # fmt: skip
        self.max_attempts = max_attempts
        self.response_timeout_s = response_timeout_s
        self.stand_down_s = stand_down_s
        self.release_wait_s = release_wait_s
        self.phase = Phase.CHECK
        self.attempts = 0
        self.detail = ""
        self._since: float | None = None
        self._asked = False
        self._answer: tuple[int, str] | None = None

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def on_response(self, api_id: int, code: int, data: str) -> None:
        if api_id == CHECK_MODE and self.phase is Phase.CHECK:
            self._answer = (code, data)

    def poll(self, now: float) -> ApiRequest | None:
        """Advance; return a request to send now, if any."""
        if self.phase in (Phase.DONE, Phase.FAILED):
            return None
        if self._since is None:
            self._since = now
        if self.phase is Phase.CHECK:
            if not self._asked:
                self._asked, self._since = True, now
                return ApiRequest("motion_switcher", CHECK_MODE)
            if self._answer is not None:
                code, data = self._answer
                self._answer = None
                return self._after_check(code, data, now)
            if now - self._since > self.response_timeout_s:
                return self._retry(now, "no CheckMode response from the motion switcher")
            return None
        if self.phase is Phase.STAND_DOWN and now - self._since >= self.stand_down_s:
            self.phase, self._since = Phase.RELEASE, now
            return ApiRequest("motion_switcher", RELEASE_MODE)
        if self.phase is Phase.RELEASE and now - self._since >= self.release_wait_s:
            self.phase, self._asked, self._since = Phase.CHECK, False, now
        return None

    def _after_check(self, code: int, data: str, now: float) -> ApiRequest | None:
        if code != 0:
            return self._retry(now, f"CheckMode failed with code {code}")
        try:
            name = str(json.loads(data or "{}").get("name", ""))
        except (ValueError, AttributeError):
            return self._retry(now, f"CheckMode answered unreadable data {data[:80]!r}")
        if not name:
            self.phase, self.detail = Phase.DONE, "no motion mode active"
            return None
        self.attempts += 1
        if self.attempts > self.max_attempts:
            self.phase, self.detail = Phase.FAILED, f"mode {name!r} still active after {self.max_attempts} releases"
            return None
        self.detail = f"releasing mode {name!r} (attempt {self.attempts})"
        self.phase, self._since = Phase.STAND_DOWN, now
        return ApiRequest("sport", SPORT_STAND_DOWN)

    def _retry(self, now: float, why: str) -> ApiRequest | None:
        self.attempts += 1
        self.detail = why
        if self.attempts > self.max_attempts:
            self.phase = Phase.FAILED
            return None
        self._asked, self._since = False, now
        return None
