"""Go to: go to the <colour> <object> among distractors that share its colour or its kind.

Success: at terminate, the target is reached (world.reached) and no distractor is nearer.
"""

from __future__ import annotations

import math

import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.splits import ID_COLOURS, ID_OBJECTS, OOD_COLOURS, OOD_OBJECTS, SplitSpec
from more_sim.tasks.base import (
    Progress,
    Scenario,
    Style,
    Task,
    choice,
    count,
    instruction,
    nearest_is,
    row,
    start_pose,
    uniform,
)
from more_sim.world import Thing, reached


def _distractor_attributes(
    rng: np.random.Generator, kind: str, colour: str, kinds: tuple[str, ...], colours: tuple[str, ...]
) -> tuple[str, str]:
    """A (kind, colour) different from the target's; half the time it shares one of the two words."""
    for _ in range(100):
        mode = rng.integers(3)
        k = kind if mode == 0 else choice(rng, kinds)
        c = colour if mode == 1 else choice(rng, colours)
        if (k, c) != (kind, colour):
            return k, c
    raise RuntimeError("no distinct distractor attributes")


class GoTo(Task):
    name = "go_to"

    def __init__(self, with_style: bool = False) -> None:
        self.with_style = with_style

    def sample(self, rng: np.random.Generator, spec: SplitSpec, style: Style) -> Scenario:
        kind, colour = choice(rng, spec.objects), choice(rng, spec.colours)
        kinds = ID_OBJECTS if spec.name == "id" else ID_OBJECTS + OOD_OBJECTS
        colours = ID_COLOURS if spec.name == "id" else ID_COLOURS + OOD_COLOURS
        attrs = [(kind, colour)]
        n = count(rng, spec.distractors)
        attrs += [_distractor_attributes(rng, kind, colour, kinds, colours) for _ in range(n)]
        positions, slot = row(rng, len(attrs), spec)
        attrs.insert(slot, attrs.pop(0))
        things = []
        for i, ((x, y), (k, c)) in enumerate(zip(positions, attrs, strict=True)):
            name = "target" if i == slot else f"distractor{i + 1}"
            yaw = float(rng.uniform(-math.pi, math.pi))
            things.append(Thing(name, k, x, y, yaw, colour=c, scale=uniform(rng, spec.scale)))
        text = instruction(rng, spec, self.name, style, self.with_style, colour=colour, object=kind)
        return Scenario(self.name, spec.name, text, tuple(things), "target", start_pose(rng, spec), style)

    def success(self, scenario: Scenario, progress: Progress, state: BaseState) -> bool:
        target = scenario.target_thing
        return reached(target, state.x, state.y, state.yaw) and nearest_is(target, scenario.things, state.x, state.y)
