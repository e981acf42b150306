"""Naming things in a scene: the instruction that names a given thing, and which things the camera sees whole.

Shared by the instruction-swap test (grounding.py) and the data options that rename a scene's target
(variants.py). Only `distinguish` (boxes named by letter) and `go_to` (objects named by colour and kind) have
several nameable things per scene; a thing is nameable only when no other nameable thing shares its words.
"""

from __future__ import annotations

import math

from more_sim.config import SimConfig
from more_sim.splits import SPLIT_SPECS, SplitSpec
from more_sim.tasks import Scenario
from more_sim.world import Thing, radius

NAMING_TASKS: tuple[str, ...] = ("distinguish", "go_to")
NAMEABLE_KINDS: dict[str, tuple[str, ...]] = {
    "go_to": ("ball", "cube", "cylinder", "pillar", "egg"),
    "distinguish": ("letter_box",),
}


def naming_fields(task: str, thing: Thing) -> dict[str, str]:
    """The words the task's instruction templates take for `thing`."""
    if task == "go_to":
        return {"colour": thing.colour, "object": thing.kind}
    if task == "distinguish":
        return {"letter": thing.letter}
    raise ValueError(f"things can be named in {list(NAMING_TASKS)} scenes, not in {task!r}")


def _template(scenario: Scenario, spec: SplitSpec) -> str:
    """The template (plus any style suffix) that produced the scene's own instruction."""
    own = naming_fields(scenario.task, scenario.target_thing)
    for split in (spec, *SPLIT_SPECS.values()):
        for template in split.templates[scenario.task]:
            text = template.format(**own)
            if scenario.instruction == text or scenario.instruction.startswith(text + " "):
                return template + scenario.instruction[len(text) :]
    raise ValueError(f"instruction {scenario.instruction!r} matches no {scenario.task} template")


def naming_instruction(scenario: Scenario, thing: Thing, spec: SplitSpec | None = None) -> str:
    """The scene's own phrasing with `thing`'s words (the instruction that names `thing`)."""
    spec = spec or SPLIT_SPECS[scenario.split]
    return _template(scenario, spec).format(**naming_fields(scenario.task, thing))


def nameable(scenario: Scenario) -> list[Thing]:
    """The things an instruction of the scene's task names unambiguously, in scene order ([] for other tasks)."""
    if scenario.task not in NAMING_TASKS:
        return []
    kinds = NAMEABLE_KINDS[scenario.task]
    things = [t for t in scenario.things if t.kind in kinds]
    words = [tuple(sorted(naming_fields(scenario.task, t).items())) for t in things]
    return [t for t, w in zip(things, words, strict=True) if words.count(w) == 1]


def renamed(scenario: Scenario, thing: Thing) -> Scenario:
    """The same scene with `thing` as the target and the instruction naming it."""
    from dataclasses import replace

    return replace(scenario, target=thing.name, instruction=naming_instruction(scenario, thing))


def half_fov_x(config: SimConfig) -> float:
    """Half the horizontal field of view [rad] of the robot's camera (square pixels): the kinematic front camera's,
    or the Go2's D435 (`SimConfig.camera_fovy`), so that what counts as in view is what that camera renders."""
    return math.atan(math.tan(math.radians(config.camera_fovy) / 2) * config.image_width / config.image_height)


def camera_bearing(thing: Thing, x: float, y: float, yaw: float) -> tuple[float, float]:
    """(bearing of the thing's centre from the camera [rad], half its angular width [rad]; nan behind)."""
    from more_sim.scene import CAMERA_FORWARD  # scene imports mujoco: only when asked

    cx, cy = x + CAMERA_FORWARD * math.cos(yaw), y + CAMERA_FORWARD * math.sin(yaw)
    dx, dy = thing.x - cx, thing.y - cy
    along = dx * math.cos(yaw) + dy * math.sin(yaw)
    across = -dx * math.sin(yaw) + dy * math.cos(yaw)
    r, dist = radius(thing), math.hypot(along, across)
    if along <= 0 or dist <= r:
        return math.nan, math.nan
    return math.atan2(across, along), math.asin(r / dist)


def fully_in_view(thing: Thing, x: float, y: float, yaw: float, config: SimConfig) -> bool:
    """The thing's bounding circle lies inside the camera's horizontal field of view, in front of it."""
    b, half = camera_bearing(thing, x, y, yaw)
    return not math.isnan(b) and abs(b) + half <= half_fov_x(config)
