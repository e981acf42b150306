"""Distractors placed beside a task's main thing, clear of the way there and through it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from more_sim.splits import ID_COLOURS, ID_OBJECTS, OOD_COLOURS, OOD_OBJECTS, SplitSpec
from more_sim.tasks.base import choice, count, place, uniform
from more_sim.world import Thing


def corridor(t: Thing, reach: float = 1.6, r: float = 0.9) -> list[tuple[float, float, float]]:
    """Keep-out circles along the way from the start to `t` and through it (for gates and bars)."""
    out = []
    c, s = math.cos(t.yaw), math.sin(t.yaw)
    steps = int(reach / 0.4)
    for k in range(-steps, steps + 1):
        a = 0.4 * k
        out.append((t.x + a * c, t.y + a * s, r))
    length = math.hypot(t.x, t.y)
    for k in range(1, int(length / 0.5)):
        f = 0.5 * k / length
        out.append((t.x * f, t.y * f, r))
    return out


def side_distractors(
    rng: np.random.Generator,
    spec: SplitSpec,
    others: Sequence[Thing],
    avoid_colour: str,
    keepouts: Sequence[tuple[float, float, float]] = (),
) -> list[Thing]:
    kinds = ID_OBJECTS if spec.name == "id" else ID_OBJECTS + OOD_OBJECTS
    colours = [c for c in (ID_COLOURS if spec.name == "id" else ID_COLOURS + OOD_COLOURS) if c != avoid_colour]
    placed = list(others)
    main = others[0]
    keep = list(keepouts) or corridor(main, reach=0.0)
    out = []
    for i in range(count(rng, spec.side_distractors)):
        kind, colour, scale = choice(rng, kinds), choice(rng, colours), uniform(rng, spec.scale)

        def make(x, y, yaw, i=i, kind=kind, colour=colour, scale=scale):  # noqa: ANN001
            return Thing(f"distractor{i + 1}", kind, x, y, yaw, colour=colour, scale=scale)

        t = place(rng, make, placed, (1.5, spec.distance[1] + 1.0), spec.bearing + 0.6, gap=0.8, keepouts=keep)
        placed.append(t)
        out.append(t)
    return out
