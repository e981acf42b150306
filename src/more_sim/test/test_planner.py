"""Grid A*: straight when free, around obstacles when blocked, clear of every inflated footprint."""

import itertools
import math

import numpy as np
import pytest

from more_sim.geometry import Circle, Rect
from more_sim.planner import RESOLUTION, plan


def _min_clearance(path, shapes, step=0.02):
    worst = math.inf
    for (ax, ay), (bx, by) in itertools.pairwise(path):
        n = max(2, int(math.hypot(bx - ax, by - ay) / step))
        for t in np.linspace(0, 1, n):
            x, y = ax + t * (bx - ax), ay + t * (by - ay)
            worst = min(worst, min(s.distance_to_point(x, y) for s in shapes))
    return worst


def test_free_space_gives_the_straight_line():
    path = plan((0.0, 0.0), (3.0, 1.0), [Circle(0.0, 5.0, 0.3)], inflate=0.4)
    assert path[0] == (0.0, 0.0) and path[-1] == (3.0, 1.0)
    assert len(path) == 2


def test_blocked_line_goes_around_with_clearance():
    shapes = [Circle(1.5, 0.0, 0.3), Rect(3.0, 0.3, 0.4, 0.25, 0.25)]
    path = plan((0.0, 0.0), (4.5, 0.0), shapes, inflate=0.45)
    assert len(path) > 2
    assert path[-1] == (4.5, 0.0)
    # Waypoints are cell centres and the line-of-sight check samples at half a cell.
    assert _min_clearance(path[1:], shapes) >= 0.45 - RESOLUTION
    length = sum(math.dist(a, b) for a, b in itertools.pairwise(path))
    assert length < 4.5 * 1.3  # a detour, not a wander


def test_goal_inside_an_obstacle_moves_to_the_nearest_free_cell():
    path = plan((0.0, 0.0), (3.0, 0.0), [Circle(3.0, 0.0, 0.3)], inflate=0.45)
    end = path[-1]
    assert math.dist(end, (3.0, 0.0)) == pytest.approx(0.75, abs=2 * RESOLUTION)
