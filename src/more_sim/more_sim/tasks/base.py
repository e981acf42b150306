"""What every task shares: the scenario (a sampled scene + instruction), episode progress, sampling helpers.

A task samples a `Scenario` from the split's settings with the environment's random generator only,
updates the episode's `Progress` after every control substep (crossing a gate line, dumping a load),
and decides success geometrically at the step the policy commands terminate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from more_common.action_contract import GAIT_NAMES
from more_sim.base_tracker import BaseState
from more_sim.splits import SPEEDS, SplitSpec
from more_sim.world import Thing, radius, surface_distance

START_KEEPOUT = 1.3  # [m] nothing within this distance of the robot's start point


@dataclass(frozen=True)
class Style:
    """How the instruction asks the robot to move (QUART's '{speed} with a {gait} gait')."""

    speed: str = "normally"
    gait: str = "trot"

    def __post_init__(self) -> None:
        if self.speed not in SPEEDS:
            raise ValueError(f"unknown speed {self.speed!r}; known: {list(SPEEDS)}")
        if self.gait not in GAIT_NAMES:
            raise ValueError(f"unknown gait {self.gait!r}; known: {list(GAIT_NAMES)}")

    def suffix(self) -> str:
        return f" {self.speed} with a {self.gait} gait"


@dataclass(frozen=True)
class Scenario:
    """One episode's scene: the things, the instruction, which thing the task is about, the start pose."""

    task: str
    split: str
    instruction: str
    things: tuple[Thing, ...]
    target: str
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)  # x, y, yaw
    style: Style = Style()

    def thing(self, name: str) -> Thing:
        for t in self.things:
            if t.name == name:
                return t
        raise KeyError(f"no thing named {name!r} in the scenario; have {[t.name for t in self.things]}")

    @property
    def target_thing(self) -> Thing:
        return self.thing(self.target)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "split": self.split,
            "instruction": self.instruction,
            "things": [asdict(t) for t in self.things],
            "target": self.target,
            "start": list(self.start),
            "style": asdict(self.style),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        return cls(
            task=data["task"],
            split=data["split"],
            instruction=data["instruction"],
            things=tuple(Thing(**t) for t in data["things"]),
            target=data["target"],
            start=tuple(float(v) for v in data["start"]),
            style=Style(**data.get("style", {})),
        )


@dataclass
class Progress:
    """What happened so far in an episode (updated every control substep)."""

    passed: bool = False  # crossed the gate/bar line inside the opening, in the forward direction
    dumped: bool = False  # pitched the body enough while at the container
    contact: str = ""  # name of the thing touched (ends the episode)
    notes: dict[str, float] = field(default_factory=dict)


class Task:
    """Base class: subclasses implement `sample` and `success`, and `update` where progress matters."""

    name: str = ""

    def sample(self, rng: np.random.Generator, spec: SplitSpec, style: Style) -> Scenario:
        raise NotImplementedError

    def update(self, scenario: Scenario, progress: Progress, prev: BaseState, state: BaseState) -> None:
        """Called after every control substep; default: nothing to track."""

    def success(self, scenario: Scenario, progress: Progress, state: BaseState) -> bool:
        raise NotImplementedError


# -- sampling helpers --------------------------------------------------------------------------------


def choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def count(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
    return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def instruction(rng: np.random.Generator, spec: SplitSpec, task: str, style: Style, with_style: bool, **fields) -> str:
    text = choice(rng, spec.templates[task]).format(**fields)
    return text + style.suffix() if with_style else text


def start_pose(rng: np.random.Generator, spec: SplitSpec) -> tuple[float, float, float]:
    return (0.0, 0.0, float(rng.uniform(-spec.start_yaw, spec.start_yaw)))


def polar(d: float, b: float) -> tuple[float, float]:
    return d * math.cos(b), d * math.sin(b)


def clear_of(t: Thing, others: Sequence[Thing], gap: float, keepouts: Sequence[tuple[float, float, float]]) -> bool:
    """No other thing within `gap` of t's bounding circle, t outside the keep-out circles and the start area."""
    r = radius(t)
    if math.hypot(t.x, t.y) < START_KEEPOUT + r:
        return False
    if any(math.hypot(t.x - kx, t.y - ky) < kr + r for kx, ky, kr in keepouts):
        return False
    return all(math.hypot(t.x - o.x, t.y - o.y) >= r + radius(o) + gap for o in others)


def place(
    rng: np.random.Generator,
    make: Any,
    others: Sequence[Thing],
    distance: tuple[float, float],
    bearing: float,
    gap: float = 0.7,
    keepouts: Sequence[tuple[float, float, float]] = (),
    tries: int = 500,
) -> Thing:
    """Sample a position (polar around the start) for `make(x, y, yaw)` that keeps clear of the others."""
    for _ in range(tries):
        x, y = polar(uniform(rng, distance), float(rng.uniform(-bearing, bearing)))
        t = make(x, y, float(rng.uniform(-math.pi, math.pi)))
        if clear_of(t, others, gap, keepouts):
            return t
    raise RuntimeError(f"could not place a thing after {tries} tries (scene too crowded)")


def row(
    rng: np.random.Generator, n: int, spec: SplitSpec, spacing: tuple[float, float] = (1.25, 1.6)
) -> tuple[list[tuple[float, float]], int]:
    """n positions side by side (none hides another from the start), and the random slot of the target.

    The row stands at a distance from the split's range, turned towards the start point within the
    split's bearing; positions jitter 0.3 m in depth.
    """
    d = uniform(rng, spec.distance)
    b = float(rng.uniform(-spec.bearing, spec.bearing))
    gap = uniform(rng, spacing)
    cx, cy = polar(d, b)
    ux, uy = -math.sin(b), math.cos(b)  # along the row
    out = []
    for k in range(n):
        lateral = (k - (n - 1) / 2) * gap
        depth = float(rng.uniform(-0.3, 0.3))
        out.append((cx + lateral * ux + depth * math.cos(b), cy + lateral * uy + depth * math.sin(b)))
    return out, int(rng.integers(n))


def nearest_is(target: Thing, candidates: Sequence[Thing], x: float, y: float) -> bool:
    """The target is at least as close (surface distance) as every candidate."""
    d = surface_distance(target, x, y)
    return all(d <= surface_distance(c, x, y) for c in candidates if c.name != target.name)
