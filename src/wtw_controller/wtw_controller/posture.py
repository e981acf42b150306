"""Body height and pitch for a policy that only walks: move the pose it walks around (leg inverse kinematics).

A velocity-tracking policy (velocity.py) outputs joint targets as offsets from a fixed default pose and observes
the joints relative to that pose. Replace the default by the pose that holds the trunk `body_height` lower
(higher) and pitched nose-down by `pitch` with every foot where the nominal pose has it, and show the policy the
gravity it would feel standing level: the policy then walks as it was trained to, around a crouched or pitched
stance. The Go2's bundled policy was never trained like this; docs/robot.md has what it does in simulation
(it walks crouched, slower, and pitches standing). No measurement on hardware exists.

Geometry (Unitree Go2 URDF, the MuJoCo Menagerie model): hips 0.1934 m ahead of / behind the trunk centre,
thigh and calf 0.213 m each; joint angles as the SDK's: thigh positive swings the foot back, calf negative bends
the knee. In a leg's sagittal plane (x forward, z up, origin at the thigh joint) the foot is at
    x = -l1 sin(t) - l2 sin(t + c),   z = -l1 cos(t) - l2 cos(t + c).
The posture's trunk pose: centre `body_height` above (below) its nominal place, rotated nose-down by `pitch`
about its lateral axis. A foot's place in the trunk frame is then R^T (foot - centre), R the rotation.

Crouching and pitching nose-down both lower the trunk's front: together they put the chin on the floor (in
simulation: body height -0.1 m with pitch 0.3 rad, -0.12 m with 0.4 rad; the world calls it a fall). So every
posture keeps the trunk's low points (`TrunkGeometry`: the chin's collision sphere, the rear bottom edge) at least
`min_clearance` above a flat floor, the trunk centre `stand_height + body_height` up. A point (x, z) of the trunk
frame is at height H + z cos(p) - x sin(p) = H + R cos(p + phi), R = hypot(x, z), phi = atan2(x, z), so the
pitches a height allows form one interval per point, |p + phi| <= acos(K / R), K = min_clearance + radius - H.
A command outside it keeps its body height and gets the nearest allowed pitch (a bar to crouch under is an
obstacle; the pitch is a gesture), and a ramp step that would leave it moves only the part that keeps clear.

Changes are rate-limited (`body_height_rate`, `pitch_rate`), so a step in the command becomes a ramp. Crouched,
the policy stumbles when asked for its usual speeds (trunk tilts of 0.3-0.6 rad at 0.45-0.7 m/s, 0.14 m down), so
the planar speed it is asked for is capped: no cap above `upright_height`, `crouched_speed` from
`crouched_height` down, linear from 1 m/s in between (on the lower of the commanded and the current height).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRONT_LEGS = (0, 1)  # SDK order FR, FL, RR, RL
UPRIGHT_SPEED = 1.0  # [m/s] the speed cap's value at upright_height (the default velocity ranges' largest)


@dataclass(frozen=True)
class LegGeometry:
    hip_x: float = 0.1934  # [m] thigh joint ahead of (front legs) / behind (rear legs) the trunk centre
    thigh: float = 0.213  # [m]
    calf: float = 0.213  # [m] knee to foot centre


GO2 = LegGeometry()


@dataclass(frozen=True)
class TrunkGeometry:
    """The trunk's lowest points for the floor clearance (MuJoCo Menagerie Go2 collision geoms, trunk frame)."""

    stand_height: float = 0.29  # [m] trunk centre above the floor standing (0.294 measured under the bundled policy)
    # (x, z, radius) [m]: the chin sphere (centre 0.293, -0.06, radius 0.047) and the box's rear bottom edge
    low_points: tuple[tuple[float, float, float], ...] = ((0.293, -0.06, 0.047), (-0.188, -0.057, 0.0))


GO2_TRUNK = TrunkGeometry()


def trunk_clearance(body_height: float, pitch: float, trunk: TrunkGeometry = GO2_TRUNK) -> float:
    """Height [m] of the trunk's lowest point above a flat floor at this posture (pitch nose-down positive)."""
    c, s = math.cos(pitch), math.sin(pitch)
    return trunk.stand_height + body_height + min(c * z - s * x - r for x, z, r in trunk.low_points)


def allowed_pitch(body_height: float, min_clearance: float, trunk: TrunkGeometry = GO2_TRUNK) -> tuple[float, float]:
    """The pitches [rad] around the level pose that keep every low point `min_clearance` above the floor at this
    body height, as an interval (low > high: none). Each point allows |p + phi| <= acos(K / R) (module docstring)."""
    low, high = -math.pi, math.pi
    for x, z, r in trunk.low_points:
        ratio = (min_clearance + r - trunk.stand_height - body_height) / math.hypot(x, z)
        if ratio >= 1.0:
            return math.inf, -math.inf
        half, phi = math.acos(max(ratio, -1.0)), math.atan2(x, z)
        low, high = max(low, -half - phi), min(high, half - phi)
    return low, high


def foot_position(thigh: float, calf: float, leg: LegGeometry = GO2) -> tuple[float, float]:
    """The foot's (x, z) from its thigh joint [m], in the trunk's sagittal plane."""
    return (
        -leg.thigh * math.sin(thigh) - leg.calf * math.sin(thigh + calf),
        -leg.thigh * math.cos(thigh) - leg.calf * math.cos(thigh + calf),
    )


def leg_angles(x: float, z: float, leg: LegGeometry = GO2) -> tuple[float, float]:
    """(thigh, calf) [rad] that put the foot at (x, z) from the thigh joint, knee bent backwards (calf < 0).

    Raises ValueError when the point is out of the leg's reach (the caller's ranges keep it inside)."""
    d2 = x * x + z * z
    cos_calf = (d2 - leg.thigh**2 - leg.calf**2) / (2.0 * leg.thigh * leg.calf)
    if not -1.0 <= cos_calf < 1.0:
        raise ValueError(f"foot at ({x:.3f}, {z:.3f}) m is out of the leg's reach")
    calf = -math.acos(cos_calf)
    knee_angle = math.atan2(leg.calf * math.sin(calf), leg.thigh + leg.calf * math.cos(calf))
    return math.atan2(-x, -z) - knee_angle, calf


def posture_pose(default_pose: np.ndarray, body_height: float, pitch: float, leg: LegGeometry = GO2) -> np.ndarray:
    """The 12 joint angles (SDK order) that move the trunk by `body_height` [m] and pitch it nose-down by `pitch`
    [rad] with the feet where `default_pose` puts them. Hip (abduction) angles are kept."""
    pose = np.array(default_pose, dtype=np.float64).reshape(12)
    c, s = math.cos(pitch), math.sin(pitch)
    for i in range(4):
        hip_x = leg.hip_x if i in FRONT_LEGS else -leg.hip_x
        fx, fz = foot_position(pose[3 * i + 1], pose[3 * i + 2], leg)
        # the foot in the nominal trunk frame, relative to the moved centre, then into the pitched trunk frame
        rx, rz = hip_x + fx, fz - body_height
        bx, bz = c * rx - s * rz, s * rx + c * rz
        pose[3 * i + 1], pose[3 * i + 2] = leg_angles(bx - hip_x, bz, leg)
    return pose


def level_gravity(gravity: np.ndarray, pitch: float) -> np.ndarray:
    """The projected gravity the trunk would measure if it were `pitch` less nose-down: R_y(pitch) g."""
    c, s = math.cos(pitch), math.sin(pitch)
    g = np.asarray(gravity, dtype=np.float64).reshape(3)
    return np.array([c * g[0] + s * g[2], g[1], -s * g[0] + c * g[2]])


@dataclass(frozen=True)
class PostureConfig:
    """Ranges and the speed cap were measured in simulation with the bundled policy (docs/robot.md); the pitch
    range stays inside the action contract's +-0.4 rad."""

    enabled: bool = True
    body_height: tuple[float, float] = (-0.12, 0.0)  # [m] commands are clipped into this
    pitch: tuple[float, float] = (-0.3, 0.4)  # [rad] nose-down positive
    body_height_rate: float = 0.25  # [m/s]
    pitch_rate: float = 1.0  # [rad/s]
    upright_height: float = -0.04  # [m] no speed cap above this body height
    crouched_height: float = -0.12  # [m] from here down the cap is crouched_speed
    crouched_speed: float = 0.3  # [m/s] planar
    # [m] the trunk's low points stay this far above the floor (TrunkGeometry). Measured standing: a posture with
    # 0.026 m by this model held; -0.001 and -0.046 put the chin on the floor. It also covers the crouch's overshoot
    # (a -0.12 m command lowers the trunk 0.147 m while walking)
    min_clearance: float = 0.04

    def __post_init__(self) -> None:
        for name in ("body_height", "pitch"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0.0 <= hi):
                raise ValueError(f"posture.{name} must be finite with low <= 0 <= high, got [{lo}, {hi}]")
        if self.body_height[0] < -0.2:
            raise ValueError(f"posture.body_height low {self.body_height[0]} is below -0.2 m (legs fold up)")
        if self.body_height[1] > 0.05:
            raise ValueError(f"posture.body_height high {self.body_height[1]} is above 0.05 m (legs straighten)")
        if self.pitch[0] < -0.45 or self.pitch[1] > 0.45:
            raise ValueError(f"posture.pitch {list(self.pitch)} is outside +-0.45 rad")
        for name in ("body_height_rate", "pitch_rate", "crouched_speed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"posture.{name} must be finite and > 0, got {value!r}")
        if not (math.isfinite(self.crouched_height) and self.crouched_height < self.upright_height <= 0.0):
            got = f"{self.crouched_height}, {self.upright_height}"
            raise ValueError(f"posture needs crouched_height < upright_height <= 0, got {got}")
        if not (math.isfinite(self.min_clearance) and 0.0 <= self.min_clearance < trunk_clearance(0.0, 0.0)):
            top = trunk_clearance(0.0, 0.0)
            raise ValueError(
                f"posture.min_clearance must be in [0, {top:.3f}) m (the nominal stand's), got {self.min_clearance!r}"
            )


class Posture:
    """The posture the policy walks around now: follows the commanded one at the configured rates."""

    def __init__(
        self,
        config: PostureConfig,
        default_pose: np.ndarray,
        leg: LegGeometry = GO2,
        trunk: TrunkGeometry = GO2_TRUNK,
    ) -> None:
        self.config = config
        self.nominal = np.array(default_pose, dtype=np.float64).reshape(12)
        self.leg = leg
        self.trunk = trunk
        # the lowest body height at which the level trunk keeps min_clearance
        self.lowest = config.min_clearance - trunk.stand_height - min(z - r for _, z, r in trunk.low_points)
        self.limited_steps = 0  # steps whose command the floor clearance cut
        self._last_command: tuple[float, float] | None = None  # the clip of the last command, cached
        self._target, self._limited = (0.0, 0.0), False
        self.reset()

    def reset(self) -> None:
        self.body_height = 0.0
        self.pitch = 0.0
        self.pose = self.nominal.copy()

    def clip(self, body_height: float, pitch: float) -> tuple[float, float]:
        """The command inside the ranges and clear of the floor: the body height first (no lower than the level
        trunk clears), then the pitch nearest the command that this height allows."""
        c = self.config
        h = self._clip_height(body_height)
        low, high = allowed_pitch(h, c.min_clearance, self.trunk)
        return h, float(np.clip(pitch, max(low, c.pitch[0]), min(high, c.pitch[1])))

    def _clip_height(self, body_height: float) -> float:
        """The body height inside its range and no lower than the level trunk clears (the clip's first part)."""
        return max(float(np.clip(body_height, *self.config.body_height)), self.lowest)

    def clear(self, body_height: float, pitch: float) -> bool:
        return trunk_clearance(body_height, pitch, self.trunk) >= self.config.min_clearance - 1e-9

    def speed_limit(self, body_height: float) -> float:
        """The planar speed cap [m/s] for the lower of `body_height` (commanded) and the current height."""
        c = self.config
        h = min(self._clip_height(body_height), self.body_height)  # every step: no pitch interval needed
        if h >= c.upright_height:
            return math.inf
        f = min((c.upright_height - h) / (c.upright_height - c.crouched_height), 1.0)  # 0 upright .. 1 crouched
        return UPRIGHT_SPEED + f * (c.crouched_speed - UPRIGHT_SPEED)

    def step(self, body_height: float, pitch: float, dt: float) -> np.ndarray:
        """Move towards the (clipped) command by at most one period's rate, never where the trunk would not clear
        the floor (both parts if that clears, else the one that does, else hold); the pose to walk around."""
        c = self.config
        if self._last_command != (body_height, pitch):  # the clip only when the command changes (it usually holds)
            target = self.clip(body_height, pitch)
            ranges_only = (float(np.clip(body_height, *c.body_height)), float(np.clip(pitch, *c.pitch)))
            self._last_command, self._target, self._limited = (body_height, pitch), target, target != ranges_only
        (target_h, target_p), self.limited_steps = self._target, self.limited_steps + self._limited
        h0, p0 = self.body_height, self.pitch
        h1 = h0 + float(np.clip(target_h - h0, -c.body_height_rate * dt, c.body_height_rate * dt))
        p1 = p0 + float(np.clip(target_p - p0, -c.pitch_rate * dt, c.pitch_rate * dt))
        h, p = next(((h, p) for h, p in ((h1, p1), (h0, p1), (h1, p0)) if self.clear(h, p)), (h0, p0))
        if (h, p) != (h0, p0):  # the inverse kinematics only when the posture moves
            self.body_height, self.pitch = h, p
            self.pose = posture_pose(self.nominal, h, p, self.leg)
        return self.pose
