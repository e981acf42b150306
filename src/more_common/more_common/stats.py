"""The timing summary every node reports on /diagnostics: median, 99th percentile and maximum of a window."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def p50_p99_max(values: Iterable[float]) -> dict[str, float]:
    """{"p50", "p99", "max"} of `values` (numpy's linear percentiles); {} when there are none."""
    a = np.asarray(list(values), dtype=np.float64)
    if a.size == 0:
        return {}
    p50, p99 = np.percentile(a, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(a.max())}
