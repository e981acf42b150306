"""The scene in words: the lettered things the camera sees, left to right, each with the column it stands in.

What a policy that describes the scene before it acts writes, and the label training teaches it from the
privileged state every frame stores (docs/research/grounding-log.md, session 9: a model that writes the scene and
then looks the named letter up in its own words chooses the named box; one that must match the letter to the
glyph directly does not).

[Contract]
- A box (a thing with a letter) is in view when the bearing of its centre from the camera lies inside the
  camera's horizontal field of view, |bearing| <= half_fov_x; boxes behind the camera never are.
- Its column is where that bearing falls among SCENE_COLUMNS equal columns across the field of view, 0 at the
  left edge (positive bearing is to the left), SCENE_COLUMNS - 1 at the right; both edges belong to the field.
- Boxes are listed left to right (bearing descending; equal bearings by letter, descending).
- `scene_text`: each box's letter and column digit, then "." ("A2C5."; "." when none is in view).
  `scene_answer`: the scene, then the named box's letter and column, then "." ("A2C5.C5." for box C).
- `scene_reasoning`: what a policy with `reasoning: scene` writes before it acts in a scenario. Always two full
  stops: `scene_answer` for the target when it is written and in view, else the scene then "." ("A2C5.." when
  the named box is out of view, ".." in the tasks that write nothing). distinguish writes its lettered boxes;
  go_to writes its objects, each as the letter of its (colour, kind) (GO_TO_CODES); the other tasks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from more_sim.config import SimConfig
from more_sim.naming import camera_bearing, half_fov_x
from more_sim.splits import ID_COLOURS, ID_LETTERS, ID_OBJECTS, OOD_LETTERS
from more_sim.world import Thing

SCENE_COLUMNS = 10  # one digit per column: the columns are single tokens of the policy's vocabulary


def view_column(bearing: float, half_fov: float) -> int:
    """Column 0..SCENE_COLUMNS-1 of a bearing [rad] (positive = left) inside +-half_fov."""
    if not (math.isfinite(bearing) and half_fov > 0 and abs(bearing) <= half_fov):
        raise ValueError(f"bearing {bearing} must lie inside the field of view +-{half_fov}")
    return min(SCENE_COLUMNS - 1, int((half_fov - bearing) / (2 * half_fov) * SCENE_COLUMNS))


def boxes_in_view(
    things: Iterable[Thing], x: float, y: float, yaw: float, config: SimConfig
) -> list[tuple[float, str]]:
    """(bearing, letter) of every lettered thing in view from the robot pose (x, y, yaw), left to right."""
    half = half_fov_x(config)
    seen = []
    for thing in things:
        if not thing.letter:
            continue
        bearing, _ = camera_bearing(thing, x, y, yaw)
        if not math.isnan(bearing) and abs(bearing) <= half:
            seen.append((bearing, thing.letter))
    return sorted(seen, reverse=True)


def scene_text(view: Sequence[tuple[float, str]], half_fov: float) -> str:
    """The boxes of `boxes_in_view` as letter + column digit each, then "."."""
    return "".join(f"{letter}{view_column(bearing, half_fov)}" for bearing, letter in view) + "."


def scene_answer(view: Sequence[tuple[float, str]], named: int, half_fov: float) -> str:
    """The scene, then the letter and column of box `named` (an index into `view`), then "."."""
    if not 0 <= named < len(view):
        raise ValueError(f"named box {named} is not one of the {len(view)} boxes in view")
    bearing, letter = view[named]
    return f"{scene_text(view, half_fov)}{letter}{view_column(bearing, half_fov)}."


def scenario_things(scenario: Mapping[str, Any]) -> list[Thing]:
    """The things of a scenario as stored in an episode's metadata (`meta["scenario"]["things"]`)."""
    keys = [f.name for f in fields(Thing)]
    return [Thing(**{k: t[k] for k in keys if k in t}) for t in scenario["things"]]


# go_to's objects in words: one letter per in-distribution (colour, kind), none of them a distinguish letter (ID or
# OOD), so that a go_to scene is written like a distinguish one ("G2Q5.Q5.": the red ball at column 2, the blue
# ball at 5, the blue ball named) and the named object is found by the same lookup of a letter in the text.
GO_TO_CODES: dict[tuple[str, str], str] = dict(
    zip(
        [(colour, kind) for colour in ID_COLOURS for kind in ID_OBJECTS],
        "GIJLNOQSUVWX",
        strict=True,
    )
)
assert not set(GO_TO_CODES.values()) & (set(ID_LETTERS) | set(OOD_LETTERS))


def thing_code(thing: Thing, task: str) -> str:
    """The letter a thing is written as in `task`'s reasoning: a box's own letter in distinguish, the (colour,
    kind) code in go_to (out-of-distribution colours and kinds have none), "" otherwise (not written)."""
    if task == "distinguish":
        return thing.letter
    if task == "go_to":
        return GO_TO_CODES.get((thing.colour, thing.kind), "")
    return ""


def scene_reasoning(
    things: Sequence[Thing], target: str, x: float, y: float, yaw: float, config: SimConfig, task: str
) -> str:
    """The reasoning label of `task` at the robot pose (x, y, yaw): the things it writes (lettered boxes in
    distinguish, coded objects in go_to) in view, then the target (named `target`)."""
    coded = [replace(t, letter=thing_code(t, task)) for t in things]
    view = boxes_in_view(coded, x, y, yaw, config)
    letter = next((t.letter for t in coded if t.name == target), "")
    named = [j for j, (_, seen) in enumerate(view) if letter and seen == letter]
    if len(named) > 1:
        raise ValueError(f"letter {letter!r} is on more than one box in view: the target is ambiguous")
    half = half_fov_x(config)
    return scene_answer(view, named[0], half) if named else scene_text(view, half) + "."
