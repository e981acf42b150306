"""Plane geometry against hand-computed values and brute-force sampling references."""

import math

import numpy as np
import pytest

from more_sim.geometry import Capsule, Circle, Rect, point_segment_distance, segment_enters_rect, wrap_angle


def test_wrap_angle():
    assert wrap_angle(0.0) == 0.0
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(-3 * math.pi / 2) == pytest.approx(math.pi / 2)


def test_point_segment_hand_values():
    assert point_segment_distance(0, 1, -1, 0, 1, 0) == pytest.approx(1.0)  # above the middle
    assert point_segment_distance(3, 4, 0, 0, 0, 0) == pytest.approx(5.0)  # degenerate segment
    assert point_segment_distance(2, 1, -1, 0, 1, 0) == pytest.approx(math.sqrt(2))  # past the end


def _brute_rect_segment(rect: Rect, a, b, n=2001):
    """Sample the segment densely; each sample's distance to the rectangle by local clamping."""
    ts = np.linspace(0, 1, n)
    px, py = a[0] + ts * (b[0] - a[0]), a[1] + ts * (b[1] - a[1])
    c, s = math.cos(rect.yaw), math.sin(rect.yaw)
    lx, ly = c * (px - rect.x) + s * (py - rect.y), -s * (px - rect.x) + c * (py - rect.y)
    d = np.hypot(np.maximum(np.abs(lx) - rect.hx, 0), np.maximum(np.abs(ly) - rect.hy, 0))
    return d.min()


def test_rect_segment_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        rect = Rect(*rng.uniform(-1, 1, 2), rng.uniform(-3, 3), *rng.uniform(0.05, 0.6, 2))
        a, b = rng.uniform(-2, 2, 2), rng.uniform(-2, 2, 2)
        exact = rect.distance_to_segment(*a, *b)
        brute = _brute_rect_segment(rect, a, b)
        # The brute force samples the segment, so it can only overestimate, by at most half a step.
        assert exact <= brute + 1e-9
        assert brute - exact <= np.hypot(*(b - a)) / 2000 + 1e-9


def test_segment_enters_rect_cases():
    assert segment_enters_rect(-2, 0, 2, 0, 1, 1)  # straight through
    assert segment_enters_rect(0, 0, 0.1, 0.1, 1, 1)  # fully inside
    assert not segment_enters_rect(-2, 2, 2, 2, 1, 1)  # passes above
    assert not segment_enters_rect(1.5, -2, 3, 2, 1, 1)  # beside


def test_capsule_clearance_hand_computed():
    robot = Capsule(back=-0.2, front=0.2, r=0.16)
    # Heading +x, ball of radius 0.2 one metre ahead: 1 - 0.2 (front) - 0.2 (ball) - 0.16 (capsule).
    assert robot.clearance(Circle(1.0, 0.0, 0.2), 0.0, 0.0, 0.0) == pytest.approx(0.44)
    # Turned 90 degrees, the ball is beside the capsule: 1 - 0.2 - 0.16.
    assert robot.clearance(Circle(1.0, 0.0, 0.2), 0.0, 0.0, math.pi / 2) == pytest.approx(0.64)
    # A 0.2 x 0.4 box 0.5 m to the left: its near face at y = 0.4, minus the capsule radius.
    box = Rect(0.0, 0.5, 0.0, 0.2, 0.1)
    assert robot.clearance(box, 0.0, 0.0, 0.0) == pytest.approx(0.24)
