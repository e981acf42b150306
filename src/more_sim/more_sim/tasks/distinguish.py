"""Distinguish: go to the box that carries the named letter, among boxes with other letters.

Success: at terminate, the named box is reached (world.reached) and no other lettered box is nearer.
Box bodies take neutral colours independent of the letter, so only the letter tells them apart.
"""

from __future__ import annotations

import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.splits import BOX_COLOURS, ID_LETTERS, OOD_LETTERS, SplitSpec
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


class Distinguish(Task):
    name = "distinguish"

    def __init__(self, with_style: bool = False) -> None:
        self.with_style = with_style

    def sample(self, rng: np.random.Generator, spec: SplitSpec, style: Style) -> Scenario:
        letter = choice(rng, spec.letters)
        pool = ID_LETTERS if spec.name == "id" else ID_LETTERS + OOD_LETTERS
        others = [ch for ch in pool if ch != letter]
        n_other = count(rng, spec.distractors)
        other_letters = [others[i] for i in rng.permutation(len(others))[:n_other]]
        letters = [*other_letters]
        positions, slot = row(rng, n_other + 1, spec)
        letters.insert(slot, letter)
        things = []
        for i, ((x, y), ch) in enumerate(zip(positions, letters, strict=True)):
            name = "target" if i == slot else f"box{i + 1}"
            colour, scale = choice(rng, BOX_COLOURS), uniform(rng, spec.scale)
            things.append(Thing(name, "letter_box", x, y, 0.0, colour=colour, scale=scale, letter=ch))
        # Boxes turn a face to the start point so the letter can be read from there.
        things = [t.moved(yaw=float(np.arctan2(-t.y, -t.x) + rng.uniform(-0.3, 0.3))) for t in things]
        text = instruction(rng, spec, self.name, style, self.with_style, letter=letter)
        return Scenario(self.name, spec.name, text, tuple(things), "target", start_pose(rng, spec), style)

    def success(self, scenario: Scenario, progress: Progress, state: BaseState) -> bool:
        target = scenario.target_thing
        boxes = [t for t in scenario.things if t.kind == "letter_box"]
        return reached(target, state.x, state.y, state.yaw) and nearest_is(target, boxes, state.x, state.y)
