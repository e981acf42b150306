"""How old the joint state is when the policy steps on it, and what the controller does when it is too old.

The age at a step is the step's time minus the time the joint state was stamped (on the robot: the bridge's
receive time of the LowState, so the hop robot -> bridge is not in it). The bundled velocity policy falls more often
the older the state and the faster it walks (docs/simulator.md, the expert over the six tasks, 150 episodes each:
2 falls on a fresh state, 7 at 2 ms, 13 at 4 ms, 34 at 6 ms; at 6 ms with |vx|, |vy| capped at 0.4 m/s, 11).

`StaleStateGuard` keeps the last `window` ages and, judged once per `judge_period_s` (a percentile per 50 Hz step
would cost), calls the state stale while their 99th percentile exceeds `warn_ms`; while stale, the command's vx and
vy are capped at `speed_cap` (0: never). A state stamped after the step that uses it (by more than
`FUTURE_TOLERANCE_MS`) cannot be: the bridge's clock and the controller's differ (two computers), so no age can be
trusted, and the guard warns and caps as for a stale state until the window is clear of such stamps. The controller
node reports the ages and the warning on /diagnostics; the in-process simulator's walker applies the same guard, so
both walk alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from more_common.stats import p50_p99_max
from wtw_controller.command_limits import cap_speed

WARN_MS = 4.0  # [ms] p99 age above which the state is stale
SPEED_CAP = 0.4  # [m/s] |vx| and |vy| while the state is stale
JUDGE_PERIOD_S = 1.0  # [s] how often the percentile is judged
WINDOW = 500  # steps (10 s at 50 Hz)
FUTURE_TOLERANCE_MS = 1.0  # [ms] a state stamped further after its step than this means the clocks differ


class StateAge:
    """The last `window` ages [ms] of the state each step used."""

    def __init__(self, window: int = WINDOW) -> None:
        self._ages: deque[float] = deque(maxlen=window)

    def record(self, step_ns: int, stamp_ns: int) -> None:
        """One step at `step_ns` on a state stamped `stamp_ns` (a zero stamp, i.e. unstamped, is not counted)."""
        if stamp_ns > 0:
            self._ages.append((step_ns - stamp_ns) / 1e6)

    def summary(self) -> dict[str, float]:
        if not self._ages:
            return {}
        out = {f"state_age_{k}_ms": v for k, v in p50_p99_max(self._ages).items()}
        out["state_age_min_ms"] = float(min(self._ages))
        return out

    def p99(self) -> float | None:
        return float(np.percentile(np.asarray(self._ages), 99)) if self._ages else None

    def minimum(self) -> float | None:
        return min(self._ages) if self._ages else None


@dataclass(frozen=True)
class StaleStateConfig:
    warn_ms: float = WARN_MS  # 0: never stale
    speed_cap: float = SPEED_CAP  # [m/s]; 0: no cap
    judge_period_s: float = JUDGE_PERIOD_S

    def __post_init__(self) -> None:
        for name in ("warn_ms", "speed_cap", "judge_period_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.judge_period_s <= 0:
            raise ValueError(f"judge_period_s must be > 0, got {self.judge_period_s!r}")


class StaleStateGuard:
    """Records each step's state age; `judge()` decides `warning` (None: fresh enough) and the speed cap."""

    def __init__(self, config: StaleStateConfig | None = None, window: int = WINDOW) -> None:
        self.config = config or StaleStateConfig()
        self.ages = StateAge(window)
        self.warning: str | None = None
        self._last_judged_s = -float("inf")

    @property
    def capped(self) -> bool:
        return self.warning is not None and self.config.speed_cap > 0

    def record(self, step_ns: int, stamp_ns: int) -> None:
        self.ages.record(step_ns, stamp_ns)

    def judge(self, now_s: float | None = None) -> None:
        """Judge now (`now_s` None) or, given the time, only if `judge_period_s` has passed since the last one."""
        if now_s is not None:
            if now_s - self._last_judged_s < self.config.judge_period_s:
                return
            self._last_judged_s = now_s
        c, p99, youngest = self.config, self.ages.p99(), self.ages.minimum()
        if p99 is None or c.warn_ms <= 0:
            self.warning = None
            return
        capped = f"speed capped at {c.speed_cap:g} m/s" if c.speed_cap > 0 else None
        if youngest < -FUTURE_TOLERANCE_MS:
            self.warning = (
                f"joint state stamped up to {-youngest:.1f} ms after the step using it: the bridge's and the "
                f"controller's clocks differ, the state's age is unknown: {capped or 'run both on one computer'}"
            )
        elif p99 > c.warn_ms:
            self.warning = (
                f"stale joint state: p99 age {p99:.1f} ms > {c.warn_ms:g} ms: "
                f"{capped or 'the walking policy falls more often'}"
            )
        else:
            self.warning = None

    def cap(self, command: np.ndarray | None) -> np.ndarray | None:
        """The 12-dim contract command with |vx|, |vy| <= speed_cap while capped (a copy), else as given."""
        return cap_speed(command, self.config.speed_cap) if self.capped else command
