"""How old the joint state is when the policy steps on it: the walking policy falls more often the older it is.

The age at a step is the step's time minus the stamp the bridge put on the newest JointState (its receive time of
the LowState; the hop robot -> bridge is not in it). In simulation the bundled velocity policy fell in 2 of 150
expert episodes on a fresh state, 7 at 2 ms, 13 at 4 ms and 104 at 10 ms (docs/simulator.md), so the node reports
the ages on /diagnostics and warns when the 99th percentile exceeds a limit.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class StateAge:
    """The last `window` ages [ms] of the state each step used."""

    def __init__(self, window: int = 500) -> None:
        self._ages: deque[float] = deque(maxlen=window)

    def record(self, step_ns: int, stamp_ns: int) -> None:
        """One step at `step_ns` on a state stamped `stamp_ns` (a zero stamp, i.e. unstamped, is not counted)."""
        if stamp_ns > 0:
            self._ages.append((step_ns - stamp_ns) / 1e6)

    def summary(self) -> dict[str, float]:
        if not self._ages:
            return {}
        a = np.asarray(self._ages)
        return {
            "state_age_p50_ms": float(np.percentile(a, 50)),
            "state_age_p99_ms": float(np.percentile(a, 99)),
            "state_age_max_ms": float(a.max()),
        }

    def warning(self, limit_ms: float) -> str | None:
        """A one-line warning when the 99th percentile age exceeds `limit_ms` (0: never)."""
        if not self._ages or limit_ms <= 0:
            return None
        p99 = float(np.percentile(np.asarray(self._ages), 99))
        if p99 <= limit_ms:
            return None
        return f"stale joint state: p99 age {p99:.1f} ms > {limit_ms:g} ms (the walking policy falls more often)"
