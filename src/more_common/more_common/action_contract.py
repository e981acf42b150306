"""The action contract: the 12-dim high-level command every part of the stack agrees on.

[Contract]
- Order: the MoRE paper's (eq. 5), index i below is slot i of the autoregressive decoder:
      0 vx [m/s]            forward body velocity
      1 vy [m/s]            lateral body velocity, positive to the left
      2 wz [rad/s]          yaw rate, positive counter-clockwise
      3 gait_phase [cycle]  theta1 of walk-these-ways
      4 gait_offset [cycle] theta2
      5 gait_bound [cycle]  theta3
      6 step_frequency [Hz]
      7 body_height [m]     offset from the nominal standing height
      8 pitch [rad]         body pitch command, sign as in walk-these-ways
      9 stance_width [m]
     10 footswing_height [m]
     11 terminate {0, 1}    1 ends the episode: the robot stands in place
  QUART/QUARD store terminate first; converters use `QUARD_ORDER` below, nothing else reorders.
- Bins: every dim has NUM_BINS equal-width bins between its bounds [low, high]:
      bin(x)   = clip(floor((x - low) / (high - low) * NUM_BINS), 0, NUM_BINS - 1)
      value(b) = low + (b + 0.5) * (high - low) / NUM_BINS        (the bin centre)
  so value(bin(x)) is within half a bin width of clip(x, low, high).
- Defaults are the walk-these-ways training ranges (the low-level controller cannot follow more).
  Bounds may be derived from data (`ActionSpec.from_data`) and are then saved with the checkpoint.
- Gait: walk-these-ways was trained on four gaits only; `snap_gait` maps any (phase, offset, bound)
  to the nearest of them (circular distance, phases are modulo one cycle) before the controller.
- Invalid input is never silently turned into motion: NaN/inf raise `InvalidActionError` naming the
  dim; values outside the bounds are clipped (and `out_of_range` reports which).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUM_DIMS = 12
NUM_BINS = 256

ACTION_NAMES: tuple[str, ...] = (
    "vx",
    "vy",
    "wz",
    "gait_phase",
    "gait_offset",
    "gait_bound",
    "step_frequency",
    "body_height",
    "pitch",
    "stance_width",
    "footswing_height",
    "terminate",
)
ACTION_UNITS: tuple[str, ...] = (
    "m/s",
    "m/s",
    "rad/s",
    "cycle",
    "cycle",
    "cycle",
    "Hz",
    "m",
    "rad",
    "m",
    "m",
    "bool",
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(ACTION_NAMES)}

VX, VY, WZ = INDEX["vx"], INDEX["vy"], INDEX["wz"]
GAIT_SLICE = slice(INDEX["gait_phase"], INDEX["gait_bound"] + 1)
TERMINATE = INDEX["terminate"]

# Walk-these-ways training ranges (Margolis & Agrawal 2022); gait dims span one cycle.
DEFAULT_LOW: tuple[float, ...] = (-1.0, -0.6, -1.0, 0.0, 0.0, 0.0, 2.0, -0.25, -0.4, 0.10, 0.03, 0.0)
DEFAULT_HIGH: tuple[float, ...] = (1.0, 0.6, 1.0, 1.0, 1.0, 1.0, 4.0, 0.15, 0.4, 0.45, 0.35, 1.0)

# The four gaits the controller was trained on, as (phase, offset, bound).
GAITS: dict[str, tuple[float, float, float]] = {
    "pronk": (0.0, 0.0, 0.0),
    "trot": (0.5, 0.0, 0.0),
    "bound": (0.0, 0.5, 0.0),
    "pace": (0.0, 0.0, 0.5),
}
GAIT_NAMES: tuple[str, ...] = tuple(GAITS)

# The nominal standing command: zero velocity, trot, mid-range parameters, not terminated.
STAND_COMMAND: tuple[float, ...] = (0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 3.0, 0.0, 0.0, 0.25, 0.08, 0.0)

# QUARD/QUART put terminate first: QUARD_ORDER[j] is the paper-order index stored at QUARD position j.
QUARD_ORDER: tuple[int, ...] = (TERMINATE, *range(TERMINATE))


class InvalidActionError(ValueError):
    """An action that must not be executed (NaN, inf, wrong shape)."""


def _as_actions(action: Any, what: str = "action") -> np.ndarray:
    arr = np.asarray(action, dtype=np.float64)
    if arr.shape[-1:] != (NUM_DIMS,):
        raise InvalidActionError(f"{what} must have {NUM_DIMS} values in its last axis, got shape {arr.shape}")
    return arr


def _check_finite(arr: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        dims = sorted({ACTION_NAMES[i] for i in np.nonzero(bad)[-1]})
        raise InvalidActionError(f"{what} has non-finite values in dims {dims}")


def snap_gait(phase: float, offset: float, bound: float) -> tuple[str, tuple[float, float, float]]:
    """Return the trained gait nearest to (phase, offset, bound) and its exact values.

    Distance is Euclidean over circular differences (0.95 is 0.05 from 0.0). Ties go to the gait
    listed first in GAITS. Non-finite input raises InvalidActionError.
    """
    values = (phase, offset, bound)
    if not all(math.isfinite(v) for v in values):
        raise InvalidActionError(f"gait (phase, offset, bound) must be finite, got {values}")

    def circular(a: float, b: float) -> float:
        d = (a - b) % 1.0
        return min(d, 1.0 - d)

    best = min(GAITS, key=lambda name: sum(circular(v, g) ** 2 for v, g in zip(values, GAITS[name], strict=True)))
    return best, GAITS[best]


@dataclass(frozen=True)
class ActionSpec:
    """Per-dim bounds and the bin arithmetic of the contract. Immutable; saved with checkpoints."""

    low: tuple[float, ...] = DEFAULT_LOW
    high: tuple[float, ...] = DEFAULT_HIGH
    num_bins: int = NUM_BINS
    names: tuple[str, ...] = field(default=ACTION_NAMES)

    def __post_init__(self) -> None:
        if tuple(self.names) != ACTION_NAMES:
            raise ValueError(f"names must be {ACTION_NAMES} (the contract's order), got {self.names}")
        if len(self.low) != NUM_DIMS or len(self.high) != NUM_DIMS:
            raise ValueError(f"low/high need {NUM_DIMS} values, got {len(self.low)} and {len(self.high)}")
        if not isinstance(self.num_bins, int) or self.num_bins < 2:
            raise ValueError(f"num_bins must be an int >= 2, got {self.num_bins!r}")
        for name, lo, hi in zip(self.names, self.low, self.high, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
                raise ValueError(f"bounds of {name} must be finite with low < high, got [{lo}, {hi}]")
        object.__setattr__(self, "low", tuple(float(v) for v in self.low))
        object.__setattr__(self, "high", tuple(float(v) for v in self.high))

    # -- arithmetic ------------------------------------------------------------------------------
    @property
    def low_array(self) -> np.ndarray:
        return np.asarray(self.low, dtype=np.float64)

    @property
    def high_array(self) -> np.ndarray:
        return np.asarray(self.high, dtype=np.float64)

    @property
    def bin_width(self) -> np.ndarray:
        return (self.high_array - self.low_array) / self.num_bins

    def out_of_range(self, action: Any) -> list[str]:
        """Names of the dims of a single action that lie outside the bounds."""
        arr = _as_actions(action)
        if arr.ndim != 1:
            raise InvalidActionError(f"out_of_range takes one action, got shape {arr.shape}")
        outside = (arr < self.low_array) | (arr > self.high_array)
        return [ACTION_NAMES[i] for i in np.nonzero(outside)[0]]

    def clip(self, action: Any) -> np.ndarray:
        arr = _as_actions(action)
        _check_finite(arr, "action")
        return np.clip(arr, self.low_array, self.high_array)

    def to_bins(self, action: Any) -> np.ndarray:
        """Continuous action(s) [..., 12] -> bin indices [..., 12] (int64). Clips; NaN/inf raise."""
        arr = self.clip(action)
        scaled = (arr - self.low_array) / (self.high_array - self.low_array) * self.num_bins
        return np.clip(np.floor(scaled), 0, self.num_bins - 1).astype(np.int64)

    def from_bins(self, bins: Any) -> np.ndarray:
        """Bin indices [..., 12] -> bin centres [..., 12] (float64). Indices outside [0, num_bins) raise."""
        b = np.asarray(bins)
        if b.shape[-1:] != (NUM_DIMS,):
            raise InvalidActionError(f"bins must have {NUM_DIMS} values in the last axis, got shape {b.shape}")
        if not np.issubdtype(b.dtype, np.integer):
            raise InvalidActionError(f"bins must be integers, got dtype {b.dtype}")
        if (b < 0).any() or (b >= self.num_bins).any():
            raise InvalidActionError(f"bins must lie in [0, {self.num_bins}), got min {b.min()} max {b.max()}")
        return self.low_array + (b.astype(np.float64) + 0.5) * self.bin_width

    def for_controller(self, action: Any) -> np.ndarray:
        """Make one action executable: validated, clipped, gait snapped, terminate in {0, 1}."""
        arr = self.clip(action)
        if arr.ndim != 1:
            raise InvalidActionError(f"for_controller takes one action, got shape {arr.shape}")
        _, gait = snap_gait(*arr[GAIT_SLICE])
        arr[GAIT_SLICE] = gait
        arr[TERMINATE] = 1.0 if arr[TERMINATE] >= 0.5 else 0.0
        return arr

    # -- construction and persistence ------------------------------------------------------------
    @classmethod
    def from_data(cls, actions: Any, num_bins: int = NUM_BINS, margin: float = 0.0) -> ActionSpec:
        """Bounds from the per-dim min/max of a dataset (QUART's choice), widened by `margin` of the range.

        Dims that never vary in the data keep the default bounds (a zero-width range cannot be binned).
        """
        arr = _as_actions(actions, "actions")
        _check_finite(arr, "actions")
        flat = arr.reshape(-1, NUM_DIMS)
        if flat.shape[0] == 0:
            raise ValueError("from_data needs at least one action")
        lo, hi = flat.min(axis=0), flat.max(axis=0)
        pad = (hi - lo) * margin
        lo, hi = lo - pad, hi + pad
        same = hi <= lo
        lo = np.where(same, DEFAULT_LOW, lo)
        hi = np.where(same, DEFAULT_HIGH, hi)
        return cls(low=tuple(lo.tolist()), high=tuple(hi.tolist()), num_bins=num_bins)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "units": list(ACTION_UNITS),
            "low": list(self.low),
            "high": list(self.high),
            "num_bins": self.num_bins,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionSpec:
        unknown = set(data) - {"names", "units", "low", "high", "num_bins"}
        if unknown:
            raise ValueError(f"unknown action spec keys: {sorted(unknown)}")
        return cls(
            low=tuple(data["low"]),
            high=tuple(data["high"]),
            num_bins=int(data["num_bins"]),
            names=tuple(data.get("names", ACTION_NAMES)),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ActionSpec:
        return cls.from_dict(json.loads(text))


def action_from_mapping(values: Mapping[str, float]) -> np.ndarray:
    """Build one action from a name -> value mapping; missing names take STAND_COMMAND's value."""
    unknown = set(values) - set(ACTION_NAMES)
    if unknown:
        raise InvalidActionError(f"unknown action dims: {sorted(unknown)} (known: {list(ACTION_NAMES)})")
    arr = np.asarray(STAND_COMMAND, dtype=np.float64)
    for name, value in values.items():
        arr[INDEX[name]] = float(value)
    return arr


def action_to_mapping(action: Sequence[float]) -> dict[str, float]:
    arr = _as_actions(action)
    if arr.ndim != 1:
        raise InvalidActionError(f"action_to_mapping takes one action, got shape {arr.shape}")
    return {name: float(v) for name, v in zip(ACTION_NAMES, arr, strict=True)}


def stand_command() -> np.ndarray:
    """The safe command: zero velocity, trot in place, nominal posture, not terminated."""
    return np.asarray(STAND_COMMAND, dtype=np.float64)


DEFAULT_SPEC = ActionSpec()
