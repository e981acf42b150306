"""The simulated world: the robot's body, the kinds of things in a scene, their footprints and contacts.

[Geometry] All lengths in metres, angles in radians, world frame z up. The robot is a Go2-sized
kinematic body: a capsule footprint 0.72 m long and 0.32 m wide around the base point, trunk centre
0.30 m above the ground plus the commanded body-height offset, body top 0.08 m above the trunk
centre. A `Thing` is one object (ball, cube, lettered box, gate, bar, container...); its footprints
are plane shapes with a height interval [z_min, z_max]. The robot touches a thing when its capsule
meets a footprint whose z_min lies below the body top: so the crawl bar (z_min = bar height) is
passable only with the body low enough, and the gate's lintel never touches.

[Reach] The robot has reached a thing when the distance from its base point to the thing's surface
(footprint) is at most REACH and the thing's centre lies within FACING of its heading.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from more_sim.geometry import Capsule, Circle, Rect, Shape, wrap_angle

ROBOT = Capsule(back=-0.20, front=0.20, r=0.16)
NOMINAL_BASE_HEIGHT = 0.30  # [m] trunk centre above the ground at body_height = 0
BODY_TOP_ABOVE_BASE = 0.08  # [m] trunk top (with the load) above the trunk centre
REACH = 0.9  # [m] base point to the target's surface
FACING = 0.6  # [rad] target centre within this angle of the heading
ARENA_RADIUS = 8.0  # [m] leaving this circle around the start ends the episode

# RGBA of every colour name the simulator uses (instructions name the first group).
COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.10, 0.10, 1.0),
    "green": (0.10, 0.65, 0.15, 1.0),
    "blue": (0.12, 0.25, 0.90, 1.0),
    "yellow": (0.95, 0.85, 0.10, 1.0),
    "orange": (1.00, 0.50, 0.05, 1.0),
    "purple": (0.55, 0.15, 0.75, 1.0),
    "pink": (1.00, 0.50, 0.75, 1.0),
    "cyan": (0.10, 0.85, 0.85, 1.0),
    # neutral colours for obstacles and box bodies
    "grey": (0.45, 0.45, 0.47, 1.0),
    "brown": (0.45, 0.30, 0.15, 1.0),
    "tan": (0.80, 0.70, 0.50, 1.0),
    "white": (0.92, 0.92, 0.92, 1.0),
}

# Kinds of things and their nominal sizes (scaled by Thing.scale).
SIMPLE_KINDS = ("ball", "cube", "cylinder", "pillar", "egg")  # goal objects and distractors
OBSTACLE_KINDS = ("barrel", "crate")
KINDS = (*SIMPLE_KINDS, *OBSTACLE_KINDS, "letter_box", "gate", "bar", "container")

BALL_R = 0.20
CUBE_H = 0.20
CYLINDER_R, CYLINDER_H = 0.18, 0.25  # radius, half height
PILLAR_R, PILLAR_H = 0.12, 0.25  # capsule radius, half length of its axis
EGG_R, EGG_H = 0.18, 0.28  # ellipsoid radii (x = y, z)
BARREL_R, BARREL_H = 0.20, 0.30
CRATE_H = 0.25
LETTER_BOX_H = 0.25  # half size of the lettered cube
POST_H = 0.05  # half width of a gate or bar post
GATE_HEIGHT = 1.0
BAR_THICKNESS = 0.08
CONTAINER_HX, CONTAINER_HY, CONTAINER_Z = 0.30, 0.40, 0.30


@dataclass(frozen=True)
class Thing:
    """One object in a scene. For gates and bars, local +x is the way through, `width` the opening."""

    name: str
    kind: str
    x: float
    y: float
    yaw: float = 0.0
    colour: str = "grey"
    scale: float = 1.0
    letter: str = ""
    width: float = 0.0  # gate/bar opening [m]
    height: float = 0.0  # bar: height of its lower edge [m]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known: {KINDS}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; known: {sorted(COLOURS)}")
        if self.kind in ("gate", "bar") and self.width <= 0:
            raise ValueError(f"{self.kind} {self.name!r} needs a width > 0")
        if self.kind == "bar" and self.height <= 0:
            raise ValueError(f"bar {self.name!r} needs a height > 0")

    def moved(self, **changes: float) -> Thing:
        return replace(self, **changes)


@dataclass(frozen=True)
class Footprint:
    shape: Shape
    z_min: float
    z_max: float


def _local(t: Thing, lx: float, ly: float) -> tuple[float, float]:
    c, s = math.cos(t.yaw), math.sin(t.yaw)
    return t.x + c * lx - s * ly, t.y + s * lx + c * ly


@functools.lru_cache(maxsize=4096)
def footprints(t: Thing) -> tuple[Footprint, ...]:
    s = t.scale
    if t.kind == "ball":
        return (Footprint(Circle(t.x, t.y, BALL_R * s), 0.0, 2 * BALL_R * s),)
    if t.kind == "cylinder":
        return (Footprint(Circle(t.x, t.y, CYLINDER_R * s), 0.0, 2 * CYLINDER_H * s),)
    if t.kind == "pillar":
        return (Footprint(Circle(t.x, t.y, PILLAR_R * s), 0.0, 2 * (PILLAR_H + PILLAR_R) * s),)
    if t.kind == "egg":
        return (Footprint(Circle(t.x, t.y, EGG_R * s), 0.0, 2 * EGG_H * s),)
    if t.kind == "barrel":
        return (Footprint(Circle(t.x, t.y, BARREL_R * s), 0.0, 2 * BARREL_H * s),)
    if t.kind in ("cube", "crate", "letter_box"):
        h = {"cube": CUBE_H, "crate": CRATE_H, "letter_box": LETTER_BOX_H}[t.kind] * s
        return (Footprint(Rect(t.x, t.y, t.yaw, h, h), 0.0, 2 * h),)
    if t.kind == "container":
        return (Footprint(Rect(t.x, t.y, t.yaw, CONTAINER_HX * s, CONTAINER_HY * s), 0.0, CONTAINER_Z * s),)
    offset = t.width / 2 + POST_H
    posts = tuple(
        Footprint(Rect(*_local(t, 0.0, side * offset), t.yaw, POST_H, POST_H), 0.0, GATE_HEIGHT) for side in (-1, 1)
    )
    if t.kind == "gate":
        return posts
    bar = Footprint(Rect(t.x, t.y, t.yaw, BAR_THICKNESS / 2, offset), t.height, t.height + BAR_THICKNESS)
    return (*posts, bar)


def body_top(body_height: float) -> float:
    """Height of the robot's highest point for a tracked body-height offset."""
    return NOMINAL_BASE_HEIGHT + body_height + BODY_TOP_ABOVE_BASE


def contact(things: tuple[Thing, ...], x: float, y: float, yaw: float, body_height: float) -> str:
    """Name of the first thing the robot touches at this pose ('' if none)."""
    top = body_top(body_height)
    for t in things:
        if abs(t.x - x) > 3.0 or abs(t.y - y) > 3.0:  # nothing in a scene is larger than this
            continue
        for fp in footprints(t):
            if fp.z_min < top and ROBOT.clearance(fp.shape, x, y, yaw) <= 0.0:
                return t.name
    return ""


def surface_distance(t: Thing, x: float, y: float) -> float:
    """Distance from a point to the nearest ground-level footprint of `t`."""
    return min(fp.shape.distance_to_point(x, y) for fp in footprints(t) if fp.z_min <= 0.0)


def bearing(t: Thing, x: float, y: float, yaw: float) -> float:
    """Angle of the thing's centre relative to the heading, in [-pi, pi)."""
    return wrap_angle(math.atan2(t.y - y, t.x - x) - yaw)


def reached(t: Thing, x: float, y: float, yaw: float) -> bool:
    return surface_distance(t, x, y) <= REACH and abs(bearing(t, x, y, yaw)) <= FACING


def crossing_coordinates(t: Thing, x: float, y: float) -> tuple[float, float]:
    """(along, across) of a point in a gate's or bar's frame: along > 0 is past it."""
    c, s = math.cos(t.yaw), math.sin(t.yaw)
    dx, dy = x - t.x, y - t.y
    return c * dx + s * dy, -s * dx + c * dy


def radius(t: Thing) -> float:
    """Radius of a circle around the thing's centre that holds all its footprints."""
    r = 0.0
    for fp in footprints(t):
        shape = fp.shape
        if isinstance(shape, Circle):
            r = max(r, math.hypot(shape.x - t.x, shape.y - t.y) + shape.r)
        else:
            r = max(r, *(math.hypot(cx - t.x, cy - t.y) for cx, cy in shape.corners()))
    return r
