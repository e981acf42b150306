"""Scripted experts: privileged-state controllers that solve each task (the data's "expert" episodes).

The expert reads the scenario and the robot's state from the environment's info (never the image):
1. plan: a path (planner.plan, grid A*) from the robot to an approach point, around every
   ground-level footprint inflated by INFLATE; for gates and bars the path then runs straight
   along the crossing direction from 1.6 m before the line to POST_DISTANCE past it;
2. follow: pure pursuit with a LOOKAHEAD point on the path; yaw rate proportional to the heading
   error, forward speed from the instruction's speed word, reduced with cos^2 of the heading error
   and near the end (v <= remaining distance / 1 s: critically damped with the base's 0.25 s lag);
   With `strafe=True` the reach tasks (go_to, distinguish, go_avoid, unload) are driven holonomically instead:
   the body turns along the path only as far as the target stays within STRAFE_VIEW of the heading, and the
   same path is followed with vx and vy at up to STRAFE_SPEED, so the target stays in the camera's view all the
   way (a policy that sees one frame can tell where to go; the turning expert loses the ball in ~62% of its
   go_avoid decisions on the Go2's D435);
   crawl lowers the body from CRAWL_LEAD before the bar's line until CRAWL_CLEAR past it (crouched walks are
   slow on the Go2: crouching all the way ran out of its time limit);
3. finish: turn to face the target (reach tasks); unload pitches the body nose-down until the tracked pitch
   exceeds the dump threshold; then the terminate command.
`ExpertVariant` bends the script for the sub-optimal generator (wrong target, skipped action,
no terminate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from more_common.action_contract import GAITS, INDEX, TERMINATE, stand_command
from more_sim.base_tracker import BaseState
from more_sim.geometry import wrap_angle
from more_sim.naming import camera_bearing
from more_sim.planner import plan
from more_sim.splits import SPEEDS, STEP_FREQUENCIES
from more_sim.tasks import Scenario
from more_sim.tasks.unload import DUMP_PITCH
from more_sim.world import Thing, bearing, crossing_coordinates, footprints, surface_distance

INFLATE = 0.45  # [m] clearance kept from footprints while planning (turning in place sweeps 0.36 m)
STANDOFF = 0.6  # [m] stop this far from the target's surface (reach needs <= 0.9)
PRE_DISTANCE = 1.6  # [m] the straight run-up before a gate or bar line
POST_DISTANCE = 0.9  # [m] stop this far past the line (success needs >= 0.4 / 0.5)
LOOKAHEAD = 0.5  # [m]
YAW_GAIN = 2.0  # [1/s]
CRAWL_HEIGHT = -0.22  # [m] body-height command under a bar
CRAWL_LEAD = 0.8  # [m] crouch from this far before a bar's line (the Go2 takes ~0.5 s, its head is 0.34 m ahead)
CRAWL_CLEAR = 0.45  # [m] stand up this far past it (the kinematic base's capsule reaches 0.36 m back, the bar 0.04)
DUMP_COMMAND = 0.38  # [rad] pitch command to unload
REPLAN_DISTANCE = 0.5  # [m] off the path by more than this -> plan again
CROSSING_SPEED = 0.45  # [m/s] at most, through gates and under bars
FINISH_DRIFT = 0.3  # [m] moved this far since reaching the goal (someone else drives): navigate again
STRAFE_VY = 0.5  # [m/s] largest sideways speed when strafing (walk-these-ways trains |vy| <= 0.6)
STRAFE_SPEED = 0.5  # [m/s] at most, when strafing: the Go2 falls and cuts corners sideways at higher speeds
STRAFE_ARRIVED = 0.15  # [m] of path left counts as arrived when strafing (the Go2 does not step at 0.08 m/s)
STRAFE_MIN_TURN = 0.35  # [rad/s] the slowest turn to face the target at the end, when strafing
STRAFE_VIEW = 0.35  # [rad] when strafing, the target stays this close to the heading (the D435 sees +-0.52)


@dataclass
class ExpertVariant:
    """Deliberate deviations (used by the sub-optimal generator; the default is the true expert)."""

    target: Thing | None = None  # go to this thing instead of the scenario's target
    lateral_offset: float = 0.0  # [m] cross a gate/bar line this far to the side of its centre
    skip_action: bool = False  # no crouch under the bar, no pitch at the container
    never_terminate: bool = False  # reach the goal, then stand still until the time limit


@dataclass
class _Plan:
    path: list[tuple[float, float]]
    s: float = 0.0  # arc-length progress along the path
    lengths: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lengths = [0.0]
        for a, b in zip(self.path, self.path[1:], strict=False):
            self.lengths.append(self.lengths[-1] + math.hypot(b[0] - a[0], b[1] - a[1]))

    @property
    def total(self) -> float:
        return self.lengths[-1]

    def at(self, s: float) -> tuple[float, float]:
        s = min(max(s, 0.0), self.total)
        for k in range(len(self.path) - 1):
            if s <= self.lengths[k + 1] or k == len(self.path) - 2:
                seg = self.lengths[k + 1] - self.lengths[k]
                f = 0.0 if seg == 0 else (s - self.lengths[k]) / seg
                (ax, ay), (bx, by) = self.path[k], self.path[k + 1]
                return ax + f * (bx - ax), ay + f * (by - ay)
        return self.path[-1]

    def project(self, x: float, y: float) -> tuple[float, float]:
        """(arc length, distance) of the path point nearest to (x, y), searched ahead of the progress."""
        best = (self.s, math.inf)
        for k in range(len(self.path) - 1):
            if self.lengths[k + 1] < self.s - 0.3 or self.lengths[k] > self.s + 2.0:
                continue
            (ax, ay), (bx, by) = self.path[k], self.path[k + 1]
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            f = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / seg2))
            d = math.hypot(x - ax - f * dx, y - ay - f * dy)
            if d < best[1]:
                best = (self.lengths[k] + f * math.sqrt(seg2), d)
        return best


def _along_ray(t: Thing, ux: float, uy: float, standoff: float) -> tuple[float, float]:
    """The point on the ray from the thing's centre along (ux, uy) at `standoff` from its surface."""
    lo, hi = 0.0, 5.0
    for _ in range(30):  # bisection on the surface distance along the ray
        mid = (lo + hi) / 2
        if surface_distance(t, t.x + mid * ux, t.y + mid * uy) < standoff:
            lo = mid
        else:
            hi = mid
    return t.x + hi * ux, t.y + hi * uy


def approach_point(
    t: Thing, x: float, y: float, others: tuple[Thing, ...] = (), standoff: float = STANDOFF
) -> tuple[float, float]:
    """Where to stop in front of `t`: `standoff` from its surface, on the side facing (x, y).

    Directions up to 90 degrees either side of the one towards (x, y) are scored by the clearance to
    the other things (capped at 1.0 m, so clear directions tie) minus 0.2 m per radian of
    deviation; the best wins. This keeps the stop point away from neighbours, so the target is also
    the nearest thing there.
    """
    base = math.atan2(y - t.y, x - t.x)
    best, best_score = None, -math.inf
    for k in range(-6, 7):
        a = base + k * math.pi / 12
        px, py = _along_ray(t, math.cos(a), math.sin(a), standoff)
        clearance = min((surface_distance(o, px, py) for o in others if o.name != t.name), default=1.0)
        score = min(clearance, 1.0) - 0.2 * abs(k * math.pi / 12)
        if score > best_score:
            best, best_score = (px, py), score
    return best


class ScriptedExpert:
    """Solves one episode at a time from privileged state; call `reset()` (or pass a new scenario)."""

    def __init__(self, variant: ExpertVariant | None = None, strafe: bool = False) -> None:
        self.variant = variant or ExpertVariant()
        self.strafe = strafe  # reach tasks: face the target, follow the path sideways (module docstring)
        self.reset()

    def reset(self) -> None:
        self._scenario: Scenario | None = None
        self._plan: _Plan | None = None
        self._phase = "navigate"
        self._finish_steps = 0
        self._finish_at = (0.0, 0.0)

    @property
    def phase(self) -> str:
        """'navigate' on the way, 'finish' once at the goal (aligning, acting, terminating)."""
        return self._phase

    @property
    def remaining(self) -> float:
        """Path length left to the goal point [m] (inf before the first decision)."""
        return math.inf if self._plan is None else self._plan.total - self._plan.s

    # -- the decision ------------------------------------------------------------------------------
    def act(self, info: dict) -> np.ndarray:
        scenario: Scenario = info["scenario"]
        state: BaseState = info["state"]
        if scenario is not self._scenario:
            self.reset()
            self._scenario = scenario
        if self._plan is None:
            self._plan = self._make_plan(scenario, state)
        drift = math.hypot(state.x - self._finish_at[0], state.y - self._finish_at[1])
        if self._phase == "finish" and drift > FINISH_DRIFT and not self._crossing(scenario):
            # only when another policy drives (DAgger): the robot left the goal, so go back to it
            self._phase = "navigate"
            self._plan = self._make_plan(scenario, state)
        cmd = self._base_command(scenario)
        if self._phase == "navigate":
            self._navigate(cmd, scenario, state)
        if self._phase == "finish":
            self._finish(cmd, scenario, state)
        return cmd

    def _base_command(self, scenario: Scenario) -> np.ndarray:
        cmd = stand_command()
        cmd[INDEX["gait_phase"] : INDEX["gait_bound"] + 1] = GAITS[scenario.style.gait]
        cmd[INDEX["step_frequency"]] = STEP_FREQUENCIES[scenario.style.speed]
        return cmd

    def _goal_thing(self, scenario: Scenario) -> Thing:
        return self.variant.target or scenario.target_thing

    def _crossing(self, scenario: Scenario) -> bool:
        return scenario.task in ("go_through", "crawl") and self.variant.target is None

    def _make_plan(self, scenario: Scenario, state: BaseState) -> _Plan:
        goal_thing = self._goal_thing(scenario)
        shapes = [fp.shape for t in scenario.things for fp in footprints(t) if fp.z_min <= 0.0]
        if self._crossing(scenario):
            c, s = math.cos(goal_thing.yaw), math.sin(goal_thing.yaw)
            off = self.variant.lateral_offset
            cx, cy = goal_thing.x - s * off, goal_thing.y + c * off
            pre = (cx - PRE_DISTANCE * c, cy - PRE_DISTANCE * s)
            post = (cx + POST_DISTANCE * c, cy + POST_DISTANCE * s)
            path = plan((state.x, state.y), pre, shapes, INFLATE)
            return _Plan([*path, post])
        goal = approach_point(goal_thing, state.x, state.y, scenario.things)
        return _Plan(plan((state.x, state.y), goal, shapes, INFLATE))

    def _speed(self, scenario: Scenario) -> float:
        v = SPEEDS[scenario.style.speed]
        return min(v, CROSSING_SPEED) if self._crossing(scenario) else v

    def _navigate(self, cmd: np.ndarray, scenario: Scenario, state: BaseState) -> None:
        p = self._plan
        s, off = p.project(state.x, state.y)
        if off > REPLAN_DISTANCE and not self._crossing(scenario):
            self._plan = p = self._make_plan(scenario, state)
            s, off = p.project(state.x, state.y)
        p.s = max(p.s, s)
        remaining = p.total - p.s
        if scenario.task == "crawl" and self._crossing(scenario) and not self.variant.skip_action:
            along, _ = crossing_coordinates(self._goal_thing(scenario), state.x, state.y)
            if -CRAWL_LEAD <= along < CRAWL_CLEAR:
                cmd[INDEX["body_height"]] = CRAWL_HEIGHT
        moving = math.hypot(state.vx, state.vy) if self.strafe else abs(state.vx)
        if remaining < (STRAFE_ARRIVED if self.strafe else 0.08) and moving < 0.1:
            self._phase = "finish"
            self._finish_at = (state.x, state.y)
            return
        tx, ty = p.at(p.s + LOOKAHEAD)
        if remaining < LOOKAHEAD:  # aim beyond the end along the last segment, not at the end itself
            (ax, ay), (bx, by) = p.path[-2], p.path[-1]
            n = math.hypot(bx - ax, by - ay) or 1.0
            tx, ty = bx + (bx - ax) / n * (LOOKAHEAD - remaining), by + (by - ay) / n * (LOOKAHEAD - remaining)
        err = wrap_angle(math.atan2(ty - state.y, tx - state.x) - state.yaw)
        if self.strafe and not self._crossing(scenario):
            self._strafe(cmd, scenario, state, err, remaining)
            return
        cmd[INDEX["wz"]] = float(np.clip(YAW_GAIN * err, -1.0, 1.0))
        v = self._speed(scenario) * max(math.cos(err), 0.0) ** 2
        cmd[INDEX["vx"]] = min(v, max(remaining, 0.0) / 1.0)

    def _strafe(self, cmd: np.ndarray, scenario: Scenario, state: BaseState, err: float, remaining: float) -> None:
        """Head along the path as far as the target stays within STRAFE_VIEW of the heading; walk towards the
        lookahead point (at `err` from the heading) with vx and, for the rest of the angle, vy. The yaw rate
        also cancels the target's drift across the view that the walking itself causes (close by it is fast)."""
        from more_sim.scene import CAMERA_FORWARD  # scene imports mujoco: only when strafing

        goal = self._goal_thing(scenario)
        target, _ = camera_bearing(goal, state.x, state.y, state.yaw)  # the camera's view, not the base centre's
        drift_per_speed = (0.0, 0.0)
        if math.isnan(target):  # behind the camera
            target = bearing(goal, state.x, state.y, state.yaw)
        else:
            distance = max(math.hypot(goal.x - state.x, goal.y - state.y) - CAMERA_FORWARD, 0.3)
            drift_per_speed = (math.sin(target) / distance, -math.cos(target) / distance)  # d(bearing)/dt per vx, vy
        v = min(self._speed(scenario), STRAFE_SPEED, max(remaining, 0.0) / 1.0)
        vx, vy = v * max(math.cos(err), 0.0), v * math.sin(err)  # never backwards: sideways at most
        scale = min(1.0, STRAFE_VY / abs(vy)) if vy else 1.0  # keep the direction when vy saturates
        vx, vy = vx * scale, vy * scale
        turn = float(np.clip(wrap_angle(err), target - STRAFE_VIEW, target + STRAFE_VIEW))
        drift = drift_per_speed[0] * vx + drift_per_speed[1] * vy
        cmd[INDEX["wz"]] = float(np.clip(YAW_GAIN * turn + drift, -1.0, 1.0))
        cmd[INDEX["vx"]], cmd[INDEX["vy"]] = vx, vy

    def _finish(self, cmd: np.ndarray, scenario: Scenario, state: BaseState) -> None:
        if not self._crossing(scenario):
            err = bearing(self._goal_thing(scenario), state.x, state.y, state.yaw)
            if abs(err) > 0.12:
                wz = YAW_GAIN * err
                if self.strafe:  # it arrives up to STRAFE_VIEW off; the Go2 does not turn at the slowest rates
                    wz = math.copysign(max(abs(wz), STRAFE_MIN_TURN), wz)
                cmd[INDEX["wz"]] = float(np.clip(wz, -1.0, 1.0))
                return
        if scenario.task == "unload" and not self.variant.skip_action:
            cmd[INDEX["pitch"]] = DUMP_COMMAND
            if state.pitch < DUMP_PITCH + 0.05:
                return
        if not self.variant.never_terminate:
            cmd[TERMINATE] = 1.0
