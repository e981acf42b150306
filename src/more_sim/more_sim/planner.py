"""Grid A* path planning around a scene's ground-level footprints, for the scripted experts.

The occupancy grid (RESOLUTION cells over the bounding box of start, goal and obstacles plus a
margin) marks a cell blocked when its centre lies within `inflate` of a footprint (vectorised numpy).
A* runs 8-connected with the Euclidean heuristic; the cell path is shortened greedily by line of
sight. Start and goal cells that fall inside the inflated region are moved to the nearest free cell
(the start is allowed to be blocked: the robot may stand close to a thing already).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

from more_sim.geometry import Circle, Rect, Shape

RESOLUTION = 0.1  # [m]
MARGIN = 1.5  # [m] grid extends this far beyond start, goal and obstacles

Point = tuple[float, float]


def _clearance_grid(shapes: Sequence[Shape], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    d = np.full(X.shape, np.inf)
    for s in shapes:
        if isinstance(s, Circle):
            d = np.minimum(d, np.hypot(X - s.x, Y - s.y) - s.r)
        elif isinstance(s, Rect):
            c, sn = math.cos(s.yaw), math.sin(s.yaw)
            lx = c * (X - s.x) + sn * (Y - s.y)
            ly = -sn * (X - s.x) + c * (Y - s.y)
            d = np.minimum(d, np.hypot(np.maximum(np.abs(lx) - s.hx, 0), np.maximum(np.abs(ly) - s.hy, 0)))
    return d


class Grid:
    def __init__(self, shapes: Sequence[Shape], points: Sequence[Point], inflate: float) -> None:
        xs_all = [p[0] for p in points] + [s.x for s in shapes]
        ys_all = [p[1] for p in points] + [s.y for s in shapes]
        self.x0 = min(xs_all) - MARGIN
        self.y0 = min(ys_all) - MARGIN
        nx = math.ceil((max(xs_all) + MARGIN - self.x0) / RESOLUTION) + 1
        ny = math.ceil((max(ys_all) + MARGIN - self.y0) / RESOLUTION) + 1
        xs = self.x0 + RESOLUTION * np.arange(nx)
        ys = self.y0 + RESOLUTION * np.arange(ny)
        self.clearance = _clearance_grid(shapes, xs, ys)
        self.blocked = self.clearance <= inflate
        self.shape = (nx, ny)

    def cell(self, p: Point) -> tuple[int, int]:
        i = round((p[0] - self.x0) / RESOLUTION)
        j = round((p[1] - self.y0) / RESOLUTION)
        return min(max(i, 0), self.shape[0] - 1), min(max(j, 0), self.shape[1] - 1)

    def point(self, c: tuple[int, int]) -> Point:
        return self.x0 + c[0] * RESOLUTION, self.y0 + c[1] * RESOLUTION

    def nearest_free(self, c: tuple[int, int]) -> tuple[int, int]:
        if not self.blocked[c]:
            return c
        free = np.argwhere(~self.blocked)
        if free.size == 0:
            return c
        k = int(np.argmin((free[:, 0] - c[0]) ** 2 + (free[:, 1] - c[1]) ** 2))
        return int(free[k, 0]), int(free[k, 1])

    def line_free(self, a: Point, b: Point) -> bool:
        n = max(2, int(math.hypot(b[0] - a[0], b[1] - a[1]) / (RESOLUTION / 2)) + 1)
        for k in range(n):
            f = k / (n - 1)
            if self.blocked[self.cell((a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])))]:
                return False
        return True


_NEIGHBOURS = [(di, dj, math.hypot(di, dj)) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]


def astar(grid: Grid, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]] | None:
    blocked = grid.blocked
    nx, ny = grid.shape
    open_heap: list[tuple[float, float, tuple[int, int]]] = [(0.0, 0.0, start)]
    came: dict[tuple[int, int], tuple[int, int]] = {}
    cost = {start: 0.0}
    while open_heap:
        _, g, cur = heapq.heappop(open_heap)
        if cur == goal:
            path = [cur]
            while cur in came:
                cur = came[cur]
                path.append(cur)
            return path[::-1]
        if g > cost.get(cur, math.inf):
            continue
        for di, dj, step in _NEIGHBOURS:
            nxt = (cur[0] + di, cur[1] + dj)
            if not (0 <= nxt[0] < nx and 0 <= nxt[1] < ny) or (blocked[nxt] and nxt != goal):
                continue
            ng = g + step
            if ng < cost.get(nxt, math.inf):
                cost[nxt] = ng
                came[nxt] = cur
                h = math.hypot(goal[0] - nxt[0], goal[1] - nxt[1])
                heapq.heappush(open_heap, (ng + h, ng, nxt))
    return None


def plan(start: Point, goal: Point, shapes: Sequence[Shape], inflate: float) -> list[Point]:
    """Waypoints from start to goal keeping `inflate` clear of the shapes (a straight line if impossible)."""
    if not shapes:
        return [start, goal]
    grid = Grid(shapes, [start, goal], inflate)
    # The robot may already stand inside the inflated region: clear a small disc around the start.
    si, sj = grid.cell(start)
    r = int(0.3 / RESOLUTION)
    grid.blocked[max(si - r, 0) : si + r + 1, max(sj - r, 0) : sj + r + 1] = False
    goal_cell = grid.nearest_free(grid.cell(goal))
    cells = astar(grid, (si, sj), goal_cell)
    if cells is None:
        return [start, goal]
    points = [
        start,
        *[grid.point(c) for c in cells[1:-1]],
        grid.point(goal_cell) if goal_cell != grid.cell(goal) else goal,
    ]
    return shortcut(grid, points)


def shortcut(grid: Grid, points: list[Point]) -> list[Point]:
    """Greedy line-of-sight smoothing: from each kept point jump to the farthest visible one."""
    out = [points[0]]
    i = 0
    while i < len(points) - 1:
        j = len(points) - 1
        while j > i + 1 and not grid.line_free(points[i], points[j]):
            j -= 1
        out.append(points[j])
        i = j
    return out
