"""Unload: walk to the <colour> container and pitch the body to dump the load into it.

Success: at terminate, the container is reached (world.reached) and, at some control substep while
it was reached, the tracked body pitch was at least DUMP_PITCH (positive pitch = nose down, the
sign convention of the simulator's camera and of `BaseState.pitch`).
"""

from __future__ import annotations

import math

import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.splits import SplitSpec
from more_sim.tasks.base import Progress, Scenario, Style, Task, choice, instruction, place, start_pose, uniform
from more_sim.tasks.side import side_distractors
from more_sim.world import Thing, reached

DUMP_PITCH = 0.25  # [rad]


class Unload(Task):
    name = "unload"

    def __init__(self, with_style: bool = False) -> None:
        self.with_style = with_style

    def sample(self, rng: np.random.Generator, spec: SplitSpec, style: Style) -> Scenario:
        colour = choice(rng, spec.colours)
        scale = uniform(rng, (1.0, 1.0 + (spec.scale[1] - spec.scale[0]) / 2))

        def make(x, y, yaw):  # noqa: ANN001
            # The long side faces the start, give or take 0.3 rad.
            facing = math.atan2(-y, -x) + float(rng.uniform(-0.3, 0.3))
            return Thing("target", "container", x, y, facing, colour=colour, scale=scale)

        container = place(rng, make, [], spec.distance, spec.bearing)
        things = [container, *side_distractors(rng, spec, [container], colour)]
        text = instruction(rng, spec, self.name, style, self.with_style, colour=colour)
        return Scenario(self.name, spec.name, text, tuple(things), "target", start_pose(rng, spec), style)

    def update(self, scenario: Scenario, progress: Progress, prev: BaseState, state: BaseState) -> None:
        if state.pitch >= DUMP_PITCH and reached(scenario.target_thing, state.x, state.y, state.yaw):
            progress.dumped = True

    def success(self, scenario: Scenario, progress: Progress, state: BaseState) -> bool:
        return progress.dumped and reached(scenario.target_thing, state.x, state.y, state.yaw)
