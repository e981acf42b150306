"""Go through and Crawl: pass through a gate / under a bar, whose line must be crossed inside the opening.

Progress: `passed` turns true when, between two control substeps, the base point crosses the line
through the gate's (bar's) posts in its forward direction (local +x) with the crossing point inside
the opening; crossing back clears it. Success: at terminate, `passed` holds and the base point is
at least BEYOND metres past the line. For Crawl the bar itself is a footprint with its lower edge as
z_min, so crossing with the body too high touches it and fails the episode at once.
"""

from __future__ import annotations

import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.splits import SplitSpec
from more_sim.tasks.base import Progress, Scenario, Style, Task, choice, instruction, polar, start_pose, uniform
from more_sim.tasks.side import corridor, side_distractors
from more_sim.world import Thing, crossing_coordinates

BEYOND = {"go_through": 0.4, "crawl": 0.5}  # [m]


class Crossing(Task):
    kind = ""

    def __init__(self, with_style: bool = False) -> None:
        self.with_style = with_style

    def make(self, rng: np.random.Generator, spec: SplitSpec, x: float, y: float, yaw: float, colour: str) -> Thing:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, spec: SplitSpec, style: Style) -> Scenario:
        colour = choice(rng, spec.colours)
        d = uniform(rng, (spec.distance[0], min(spec.distance[1], spec.distance[0] + 1.2)))
        b = float(rng.uniform(-spec.bearing, spec.bearing)) * 0.6
        x, y = polar(d, b)
        main = self.make(rng, spec, x, y, b + float(rng.uniform(-0.3, 0.3)), colour)
        things = [main, *side_distractors(rng, spec, [main], colour, corridor(main))]
        text = instruction(rng, spec, self.name, style, self.with_style, colour=colour)
        return Scenario(self.name, spec.name, text, tuple(things), "target", start_pose(rng, spec), style)

    def update(self, scenario: Scenario, progress: Progress, prev: BaseState, state: BaseState) -> None:
        t = scenario.target_thing
        a0, c0 = crossing_coordinates(t, prev.x, prev.y)
        a1, c1 = crossing_coordinates(t, state.x, state.y)
        if a0 < 0.0 <= a1:
            f = -a0 / (a1 - a0) if a1 != a0 else 0.0
            across = c0 + f * (c1 - c0)
            progress.passed = abs(across) < t.width / 2
        elif a1 < 0.0 <= a0:
            progress.passed = False

    def success(self, scenario: Scenario, progress: Progress, state: BaseState) -> bool:
        along, _ = crossing_coordinates(scenario.target_thing, state.x, state.y)
        return progress.passed and not progress.contact and along >= BEYOND[self.name]


class GoThrough(Crossing):
    name = "go_through"

    def make(self, rng: np.random.Generator, spec: SplitSpec, x: float, y: float, yaw: float, colour: str) -> Thing:
        return Thing("target", "gate", x, y, yaw, colour=colour, width=uniform(rng, spec.gate_width))


class Crawl(Crossing):
    name = "crawl"

    def make(self, rng: np.random.Generator, spec: SplitSpec, x: float, y: float, yaw: float, colour: str) -> Thing:
        width = uniform(rng, (1.0, 1.3))
        return Thing("target", "bar", x, y, yaw, colour=colour, width=width, height=uniform(rng, spec.bar_height))
