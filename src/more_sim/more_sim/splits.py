"""In-distribution and out-of-distribution settings, in the spirit of the paper's generalisation tests.

The "id" split is what training data is generated from. The "ood" split changes every axis the
paper names at once: the target's colour, object type and letter come from values never used as a
target in "id" (distractors may use any value), instructions use phrasings never used in "id", there
are more distractors, and the robot's start heading and the target's placement vary more widely.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS: tuple[str, ...] = ("distinguish", "go_to", "go_through", "go_avoid", "crawl", "unload")
SPLITS: tuple[str, ...] = ("id", "ood")

ID_COLOURS = ("red", "green", "blue", "yellow")
OOD_COLOURS = ("orange", "purple", "pink", "cyan")
ID_OBJECTS = ("ball", "cube", "cylinder")
OOD_OBJECTS = ("pillar", "egg")
# Letters as in QUARD's distinguish task (A-F), unseen ones for OOD.
ID_LETTERS = ("A", "B", "C", "D", "E", "F")
OOD_LETTERS = ("H", "K", "M", "P", "R", "T")
BOX_COLOURS = ("tan", "white", "grey", "brown")  # lettered boxes' bodies: no colour cue for the letter
OBSTACLE_COLOURS = ("grey", "brown", "tan")

SPEEDS: dict[str, float] = {"slowly": 0.35, "normally": 0.6, "quickly": 0.85}  # [m/s] expert forward speed
STEP_FREQUENCIES: dict[str, float] = {"slowly": 2.5, "normally": 3.0, "quickly": 3.5}  # [Hz]

ID_TEMPLATES: dict[str, tuple[str, ...]] = {
    "distinguish": ("go to the box with the letter {letter}", "go to the {letter} box"),
    "go_to": ("go to the {colour} {object}",),
    "go_through": ("go through the {colour} gate",),
    "go_avoid": ("go to the {colour} ball and avoid the obstacles",),
    "crawl": ("crawl under the {colour} bar",),
    "unload": ("go to the {colour} container and unload",),
}
OOD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "distinguish": ("walk to the box marked {letter}", "find the box labelled {letter}"),
    "go_to": ("walk over to the {colour} {object}", "approach the {colour} {object}"),
    "go_through": ("pass through the {colour} gate", "walk through the {colour} doorway"),
    "go_avoid": ("reach the {colour} ball without touching the obstacles",),
    "crawl": ("duck under the {colour} bar", "get under the {colour} barrier"),
    "unload": ("drop the load into the {colour} container",),
}


@dataclass(frozen=True)
class SplitSpec:
    name: str
    colours: tuple[str, ...]  # target colours
    objects: tuple[str, ...]  # go_to target kinds
    letters: tuple[str, ...]  # distinguish target letters
    templates: dict[str, tuple[str, ...]]
    distance: tuple[float, float]  # [m] start to target
    bearing: float  # [rad] max |direction of the target| from the start's nominal heading
    start_yaw: float  # [rad] max |start heading| off nominal
    distractors: tuple[int, int]  # inclusive range, go_to / distinguish
    side_distractors: tuple[int, int]  # other tasks
    obstacles: tuple[int, int]  # go_avoid
    scale: tuple[float, float]  # object size factor
    gate_width: tuple[float, float]
    bar_height: tuple[float, float]


SPLIT_SPECS: dict[str, SplitSpec] = {
    "id": SplitSpec(
        name="id",
        colours=ID_COLOURS,
        objects=ID_OBJECTS,
        letters=ID_LETTERS,
        templates=ID_TEMPLATES,
        distance=(2.0, 3.5),
        bearing=0.35,
        start_yaw=0.25,
        distractors=(1, 2),
        side_distractors=(0, 1),
        obstacles=(1, 2),
        scale=(0.9, 1.1),
        gate_width=(0.9, 1.2),
        bar_height=(0.24, 0.30),
    ),
    "ood": SplitSpec(
        name="ood",
        colours=OOD_COLOURS,
        objects=OOD_OBJECTS,
        letters=OOD_LETTERS,
        templates=OOD_TEMPLATES,
        distance=(1.8, 4.5),
        bearing=0.6,
        start_yaw=0.6,
        distractors=(2, 4),
        side_distractors=(1, 3),
        obstacles=(2, 3),
        scale=(0.75, 1.3),
        gate_width=(0.85, 1.3),
        bar_height=(0.22, 0.32),
    ),
}


def split_spec(name: str) -> SplitSpec:
    try:
        return SPLIT_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown split {name!r}; known: {list(SPLITS)}") from None
