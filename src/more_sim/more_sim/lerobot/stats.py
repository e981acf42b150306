"""Feature statistics as LeRobot's compute_stats writes them: min, max, mean, std, count, q01..q99.

Vectors: per dimension over frames. Images: per channel over every pixel of every frame, in [0, 1],
shape (3, 1, 1), computed exactly from 256-bin histograms of the uint8 frames (LeRobot samples frames;
every frame is used here). Quantiles use numpy's default (linear) interpolation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILES: dict[str, float] = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_NAMES: tuple[str, ...] = ("min", "max", "mean", "std", "count", *QUANTILES)


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of [N] or [N, d] values over the first axis (a scalar feature gives shape-(1,) stats)."""
    x = np.asarray(values, dtype=np.float64)
    x = x.reshape(len(x), -1)
    out = {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.array([len(x)], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        out[name] = np.quantile(x, q, axis=0)
    return out


def image_histogram(images: np.ndarray) -> np.ndarray:
    """int64 [3, 256]: how many pixels of each channel take each grey level."""
    return np.stack([np.bincount(images[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.int64)


def _histogram_quantile(hist: np.ndarray, q: float) -> float:
    """np.quantile(values, q) of the values a histogram counts (linear interpolation between ranks)."""
    cum = np.cumsum(hist)
    pos = q * (cum[-1] - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, int(cum[-1]) - 1)
    v_lo = int(np.searchsorted(cum, lo, side="right"))
    v_hi = int(np.searchsorted(cum, hi, side="right"))
    return v_lo + (v_hi - v_lo) * (pos - lo)


def histogram_stats(hist: np.ndarray, frames: int) -> dict[str, np.ndarray]:
    """Image stats from per-channel histograms, scaled to [0, 1], shape (3, 1, 1); count = frames."""
    levels = np.arange(256, dtype=np.float64)
    n = hist.sum(axis=1).astype(np.float64)
    mean = (hist * levels).sum(axis=1) / n
    var = (hist * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
    present = hist > 0
    out = {
        "min": np.array([levels[p].min() for p in present]),
        "max": np.array([levels[p].max() for p in present]),
        "mean": mean,
        "std": np.sqrt(var),
    }
    for name, q in QUANTILES.items():
        out[name] = np.array([_histogram_quantile(h, q) for h in hist])
    scaled = {k: (v / 255.0).reshape(3, 1, 1) for k, v in out.items()}
    scaled["count"] = np.array([frames], dtype=np.int64)
    return scaled


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {feature: {k: v.tolist() for k, v in s.items()} for feature, s in stats.items()}
