"""Go avoid: reach the <colour> ball without touching the obstacles placed across the straight path.

Success: at terminate, the ball is reached (world.reached). Touching an obstacle (or anything else)
ends the episode as a failure at once.
"""

from __future__ import annotations

import math

import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.splits import OBSTACLE_COLOURS, SplitSpec
from more_sim.tasks.base import (
    Progress,
    Scenario,
    Style,
    Task,
    choice,
    clear_of,
    count,
    instruction,
    place,
    start_pose,
    uniform,
)
from more_sim.world import Thing, reached


class GoAvoid(Task):
    name = "go_avoid"

    def __init__(self, with_style: bool = False) -> None:
        self.with_style = with_style

    def sample(self, rng: np.random.Generator, spec: SplitSpec, style: Style) -> Scenario:
        colour = choice(rng, spec.colours)
        distance = (max(spec.distance[0], 3.2), max(spec.distance[1], 3.8))
        bearing = spec.bearing * 0.6

        def make_goal(x, y, yaw):  # noqa: ANN001
            return Thing("target", "ball", x, y, yaw, colour=colour, scale=uniform(rng, spec.scale))

        goal = place(rng, make_goal, [], distance, bearing)
        things = [goal]
        length = math.hypot(goal.x, goal.y)
        ux, uy = goal.x / length, goal.y / length
        n = count(rng, spec.obstacles)
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        for i in range(n):
            kind = choice(rng, ("barrel", "crate"))
            obstacle_colour = choice(rng, OBSTACLE_COLOURS)
            scale = uniform(rng, spec.scale)
            for _ in range(200):
                # Spread along the straight line from the start to the goal, so each has to be avoided.
                u = (0.25 + 0.6 * (i + float(rng.uniform(0.25, 0.75))) / n) * length
                v = side * float(rng.uniform(0.0, 0.4))
                x, y = u * ux - v * uy, u * uy + v * ux
                t = Thing(f"obstacle{i}", kind, x, y, float(rng.uniform(-math.pi, math.pi)), obstacle_colour, scale)
                if clear_of(t, things, 0.35, ()):
                    things.append(t)
                    break
            side = -side  # alternate sides: the obstacles make a slalom, never a wall
        text = instruction(rng, spec, self.name, style, self.with_style, colour=colour)
        return Scenario(self.name, spec.name, text, tuple(things), "target", start_pose(rng, spec), style)

    def success(self, scenario: Scenario, progress: Progress, state: BaseState) -> bool:
        return not progress.contact and reached(scenario.target_thing, state.x, state.y, state.yaw)
