"""Intervals for success rates and their differences (pure Python; the ablation report's statistics).

- `wilson(k, n)`: Wilson's score interval for one binomial proportion (what `more-sim eval` reports too).
- `newcombe(k1, n1, k2, n2)`: Newcombe's hybrid score interval for p1 - p2 (method 10 of Newcombe 1998),
  built from the two Wilson intervals; good coverage at the small n and extreme p of these tables.
Both treat episodes as independent Bernoulli trials; the report says what that leaves out (seed variance).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's 95 % interval for successes / n; (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0 or n successes the bound is exactly 0 or 1 (the rounding of centre - half can land on either side)
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return lower, upper


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """(p1 - p2, lower, upper): Newcombe's hybrid score interval for the difference of two proportions."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"both samples need episodes, got n1={n1}, n2={n2}")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, lower, upper
