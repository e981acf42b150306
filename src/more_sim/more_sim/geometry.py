"""Plane geometry for the simulator's contact and success checks (pure Python floats, no numpy).

The robot's footprint is a capsule (a segment along its heading, inflated by a radius); objects are
circles or oriented rectangles. Distances are exact: segment-to-point for circles; for a rectangle,
zero if the segment enters it, else the smaller of the endpoints' distances to the rectangle and the
corners' distances to the segment (exact for a segment against a convex polygon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def wrap_angle(a: float) -> float:
    """Angle in [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def point_segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0.0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def point_rect_distance(px: float, py: float, hx: float, hy: float) -> float:
    """Distance from a point (in the rectangle's frame) to the axis-aligned rectangle |x|<=hx, |y|<=hy."""
    dx = max(abs(px) - hx, 0.0)
    dy = max(abs(py) - hy, 0.0)
    return math.hypot(dx, dy)


def segment_enters_rect(ax: float, ay: float, bx: float, by: float, hx: float, hy: float) -> bool:
    """Liang-Barsky: does the segment a-b (rectangle frame) touch the rectangle |x|<=hx, |y|<=hy?"""
    t0, t1 = 0.0, 1.0
    dx, dy = bx - ax, by - ay
    for p, q in ((-dx, ax + hx), (dx, hx - ax), (-dy, ay + hy), (dy, hy - ay)):
        if p == 0.0:
            if q < 0.0:
                return False
        else:
            r = q / p
            if p < 0.0:
                t0 = max(t0, r)
            else:
                t1 = min(t1, r)
            if t0 > t1:
                return False
    return True


@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float

    def distance_to_segment(self, ax: float, ay: float, bx: float, by: float) -> float:
        return max(point_segment_distance(self.x, self.y, ax, ay, bx, by) - self.r, 0.0)

    def distance_to_point(self, px: float, py: float) -> float:
        return max(math.hypot(px - self.x, py - self.y) - self.r, 0.0)


@dataclass(frozen=True)
class Rect:
    """Oriented rectangle: centre (x, y), heading yaw, half extents hx (along yaw) and hy."""

    x: float
    y: float
    yaw: float
    hx: float
    hy: float

    def to_local(self, px: float, py: float) -> tuple[float, float]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        dx, dy = px - self.x, py - self.y
        return c * dx + s * dy, -s * dx + c * dy

    def corners(self) -> list[tuple[float, float]]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        out = []
        for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1)):
            lx, ly = sx * self.hx, sy * self.hy
            out.append((self.x + c * lx - s * ly, self.y + s * lx + c * ly))
        return out

    def distance_to_point(self, px: float, py: float) -> float:
        lx, ly = self.to_local(px, py)
        return point_rect_distance(lx, ly, self.hx, self.hy)

    def distance_to_segment(self, ax: float, ay: float, bx: float, by: float) -> float:
        lax, lay = self.to_local(ax, ay)
        lbx, lby = self.to_local(bx, by)
        if segment_enters_rect(lax, lay, lbx, lby, self.hx, self.hy):
            return 0.0
        d = min(point_rect_distance(lax, lay, self.hx, self.hy), point_rect_distance(lbx, lby, self.hx, self.hy))
        for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1)):
            d = min(d, point_segment_distance(sx * self.hx, sy * self.hy, lax, lay, lbx, lby))
        return d


Shape = Circle | Rect


@dataclass(frozen=True)
class Capsule:
    """The robot's footprint: segment from `back` to `front` metres along the heading, inflated by r."""

    back: float
    front: float
    r: float

    def segment(self, x: float, y: float, yaw: float) -> tuple[float, float, float, float]:
        c, s = math.cos(yaw), math.sin(yaw)
        return x + self.back * c, y + self.back * s, x + self.front * c, y + self.front * s

    def clearance(self, shape: Shape, x: float, y: float, yaw: float) -> float:
        """Gap between the capsule at pose (x, y, yaw) and `shape` (0 or less means contact)."""
        return shape.distance_to_segment(*self.segment(x, y, yaw)) - self.r
