"""The MuJoCo scene: one fixed model with a pool of mocap bodies per kind of thing, and the robot's camera.

A scene is compiled once per renderer; each episode moves pooled bodies into place through
`mocap_pos`/`mocap_quat` and sets their sizes, colours and letter materials in the model arrays
(`geom_size`, `geom_pos`, `geom_rgba`, `geom_matid`); unused bodies are parked below the floor with
alpha 0 (MuJoCo then skips them). Nothing is simulated: `mj_forward` only places bodies and camera.

Rendering facts this relies on (verified with MuJoCo 4.0 on Mesa llvmpipe): MUJOCO_GL must be set
before `import mujoco` (EGL by default here); `mj_forward` before the first `update_scene` (else a
black frame); the offscreen buffer is at least the render size; `offsamples="0"` and no shadows make
it 2-2.5x faster; clip planes are relative to the model's extent, so it is pinned to 1 (near plane
1 cm: a low camera close to a box must not see through it); the robot's own geoms sit in group 3,
hidden from its camera; the floor plane's third size (its grid spacing for rendering) is 1 m, as a
0.1 m grid over a 30 m floor costs 5x the frame time; geoms moved relative to their body need
`geom_sameframe` = 0 (else MuJoCo ignores `geom_pos`); one Renderer per process.

[Camera] The front camera sits CAMERA_FORWARD ahead of and CAMERA_UP above the trunk centre, looks
along the heading tilted down by `tilt`, and moves with the body: trunk height = NOMINAL_BASE_HEIGHT +
body_height, trunk pitch = the tracked pitch (positive = nose down).
"""

from __future__ import annotations

import math

import mujoco  # MUJOCO_GL's default (egl) is set by the package's __init__, which runs before this module
import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.letters import letter_png
from more_sim.splits import ID_LETTERS, OOD_LETTERS
from more_sim.world import (
    BALL_R,
    BAR_THICKNESS,
    BARREL_H,
    BARREL_R,
    COLOURS,
    CONTAINER_HX,
    CONTAINER_HY,
    CONTAINER_Z,
    CRATE_H,
    CUBE_H,
    CYLINDER_H,
    CYLINDER_R,
    EGG_H,
    EGG_R,
    GATE_HEIGHT,
    LETTER_BOX_H,
    NOMINAL_BASE_HEIGHT,
    PILLAR_H,
    PILLAR_R,
    POST_H,
    Thing,
)

CAMERA_FORWARD = 0.28  # [m] ahead of the trunk centre
CAMERA_UP = 0.06  # [m] above the trunk centre
DEFAULT_TILT = 0.2  # [rad] camera looks down by this much with a level body
DEFAULT_FOVY = 60.0  # [deg]
LETTERS: tuple[str, ...] = ("", *ID_LETTERS, *OOD_LETTERS)  # "" = blank face
POOL: dict[str, int] = {
    "ball": 5,
    "cube": 5,
    "cylinder": 5,
    "pillar": 5,
    "egg": 5,
    "barrel": 3,
    "crate": 3,
    "letter_box": 5,
    "gate": 1,
    "bar": 1,
    "container": 1,
}
PARK_Z = -20.0
ROBOT_GROUP = 3
WALL = 0.015  # container wall half thickness


def _fmt(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _parts(kind: str) -> list[tuple[str, str, tuple[float, ...], tuple[float, ...]]]:
    """(part, geom type, size, pos) of one pooled body at scale 1 (gate/bar sizes are set per episode)."""
    h = LETTER_BOX_H
    if kind == "ball":
        return [("main", "sphere", (BALL_R,), (0, 0, BALL_R))]
    if kind == "cube":
        return [("main", "box", (CUBE_H,) * 3, (0, 0, CUBE_H))]
    if kind == "cylinder":
        return [("main", "cylinder", (CYLINDER_R, CYLINDER_H), (0, 0, CYLINDER_H))]
    if kind == "pillar":
        return [("main", "capsule", (PILLAR_R, PILLAR_H), (0, 0, PILLAR_H + PILLAR_R))]
    if kind == "egg":
        return [("main", "ellipsoid", (EGG_R, EGG_R, EGG_H), (0, 0, EGG_H))]
    if kind == "barrel":
        return [("main", "cylinder", (BARREL_R, BARREL_H), (0, 0, BARREL_H))]
    if kind == "crate":
        return [("main", "box", (CRATE_H,) * 3, (0, 0, CRATE_H))]
    if kind == "letter_box":
        decals = [
            (f"decal{k}", "box", (0.001, 0.8 * h, 0.8 * h), (math.cos(a) * (h + 0.002), math.sin(a) * (h + 0.002), h))
            for k, a in enumerate((0.0, math.pi / 2, math.pi, 3 * math.pi / 2))
        ]
        return [("main", "box", (h, h, h), (0, 0, h)), *decals]
    if kind == "gate":
        return [
            ("post0", "box", (POST_H,) * 3, (0, 0, 0)),
            ("post1", "box", (POST_H,) * 3, (0, 0, 0)),
            ("top", "box", (POST_H,) * 3, (0, 0, 0)),
        ]
    if kind == "bar":
        return [
            ("post0", "box", (POST_H,) * 3, (0, 0, 0)),
            ("post1", "box", (POST_H,) * 3, (0, 0, 0)),
            ("bar", "box", (POST_H,) * 3, (0, 0, 0)),
        ]
    if kind == "container":
        hx, hy, hz = CONTAINER_HX, CONTAINER_HY, CONTAINER_Z / 2
        return [
            ("bottom", "box", (hx, hy, WALL), (0, 0, WALL)),
            ("wall0", "box", (WALL, hy, hz), (hx - WALL, 0, hz)),
            ("wall1", "box", (WALL, hy, hz), (-hx + WALL, 0, hz)),
            ("wall2", "box", (hx, WALL, hz), (0, hy - WALL, hz)),
            ("wall3", "box", (hx, WALL, hz), (0, -hy + WALL, hz)),
        ]
    raise ValueError(f"unknown kind {kind!r}")


def _decal_yaw(part: str) -> float:
    return {"decal0": 0.0, "decal1": 90.0, "decal2": 180.0, "decal3": 270.0}[part]


def build_xml(
    width: int,
    height: int,
    fovy: float = DEFAULT_FOVY,
    tilt: float = DEFAULT_TILT,
    kinematic_robot: bool = True,
    collide: bool = False,
) -> tuple[str, dict]:
    """The scene's MJCF and its in-memory assets (letter textures).

    `kinematic_robot`: a mocap body carrying the front camera (the kinematic embodiment); without it the MJCF is a
    robot-free world that `more_sim.go2.Go2Body` attaches the physics Go2 to. `collide`: the floor and the things
    take part in contacts (the physics Go2 walks on the floor and bumps into things; letter decals never collide).
    `width` x `height` is the largest image any renderer of this model makes (MuJoCo's offscreen buffer).
    """
    assets = {f"letter_{ch or 'blank'}.png": letter_png(ch) for ch in LETTERS}
    textures = "\n".join(
        f'    <texture name="tex_{ch or "blank"}" type="2d" file="letter_{ch or "blank"}.png"/>'
        f'<material name="letter_{ch or "blank"}" texture="tex_{ch or "blank"}"/>'
        for ch in LETTERS
    )
    solid = ' contype="1" conaffinity="1"' if collide else ' contype="0" conaffinity="0"'
    bodies = []
    for kind, n in POOL.items():
        for i in range(n):
            geoms = []
            for part, gtype, size, pos in _parts(kind):
                extra = solid
                if part.startswith("decal"):
                    extra = ' contype="0" conaffinity="0"'
                    extra += f' material="letter_blank" euler="0 0 {_decal_yaw(part):g}" rgba="1 1 1 1"'
                geoms.append(
                    f'      <geom name="{kind}{i}/{part}" type="{gtype}" size="{_fmt(size)}" pos="{_fmt(pos)}"{extra}/>'
                )
            bodies.append(
                f'    <body name="{kind}{i}" mocap="true" pos="0 0 {PARK_Z}">\n' + "\n".join(geoms) + "\n    </body>"
            )
    up = (math.sin(tilt), 0.0, math.cos(tilt))
    robot = ""
    if kinematic_robot:
        robot = f"""    <body name="robot" mocap="true" pos="0 0 {NOMINAL_BASE_HEIGHT}">
      <camera name="front" pos="{CAMERA_FORWARD} 0 {CAMERA_UP}" xyaxes="0 -1 0 {_fmt(up)}" fovy="{fovy:g}"/>
      <geom name="robot/trunk" type="box" size="0.19 0.09 0.05" group="{ROBOT_GROUP}" rgba="0.2 0.2 0.22 1"
            contype="0" conaffinity="0"/>
    </body>
"""
    floor_contact = ' friction="1.0 0.005 0.0001"' if collide else ' contype="0" conaffinity="0"'
    xml = f"""<mujoco model="more_sim">
  <statistic extent="1" center="0 0 0.3"/>
  <visual>
    <global offwidth="{max(width, 64)}" offheight="{max(height, 64)}"/>
    <quality offsamples="0" shadowsize="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
    <map znear="0.01" zfar="40"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.62 0.76 0.95" rgb2="0.95 0.96 1"
             width="64" height="64"/>
    <texture name="floor" type="2d" builtin="checker" rgb1="0.52 0.52 0.50" rgb2="0.62 0.62 0.60"
             width="64" height="64"/>
    <material name="floor" texture="floor" texrepeat="0.5 0.5" texuniform="true"/>
{textures}
  </asset>
  <worldbody>
    <light directional="true" pos="0 0 6" dir="-0.3 -0.2 -1" diffuse="0.55 0.55 0.55" castshadow="false"/>
    <geom name="floor" type="plane" size="15 15 1" material="floor"{floor_contact}/>
{robot}{chr(10).join(bodies)}
  </worldbody>
</mujoco>
"""
    return xml, assets


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def yaw_pitch_quat(yaw: float, pitch: float) -> np.ndarray:
    """Rotation about z by yaw, then about the new y by pitch (positive pitch: nose down)."""
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    return np.array([cy * cp, -sy * sp, cy * sp, sy * cp])


def _bounds(gtype: int, size: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    """MuJoCo's bounding sphere radius and local box half-sizes of a primitive geom (what its compiler computes)."""
    a, b, c = (float(v) for v in size)
    if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
        return a, (a, a, a)
    if gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
        return a + b, (a, a, a + b)
    if gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
        return math.hypot(a, b), (a, a, b)
    if gtype == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
        return max(a, b, c), (a, b, c)
    return math.sqrt(a * a + b * b + c * c), (a, b, c)  # box


class ThingPool:
    """The pooled bodies of a model built by `build_xml`: puts a scenario's things in place, names what a geom is.

    Works on any model holding the pool (the kinematic scene, or the world the physics Go2 is attached to). Sizes
    change per episode, so each resized geom also gets the bounding sphere and box MuJoCo's collision broad phase
    uses (the compiler computes them once for the XML's sizes).
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model, self.data = model, data
        m = model
        self._slots: dict[str, list[tuple[int, dict[str, int]]]] = {}
        for kind, n in POOL.items():
            slots = []
            for i in range(n):
                body = m.body(f"{kind}{i}")
                geoms = {part: m.geom(f"{kind}{i}/{part}").id for part, *_ in _parts(kind)}
                slots.append((int(body.mocapid[0]), geoms))
            self._slots[kind] = slots
        # Pooled geoms move relative to their bodies per episode: MuJoCo's compile-time "same frame"
        # shortcut would ignore geom_pos changes, so it is switched off for them.
        for slots in self._slots.values():
            for _, geoms in slots:
                for g in geoms.values():
                    m.geom_sameframe[g] = 0
        self._base_size = m.geom_size.copy()
        self._base_pos = m.geom_pos.copy()
        self._materials = {ch: m.material(f"letter_{ch or 'blank'}").id for ch in LETTERS}
        self.owner: dict[int, str] = {}  # geom id -> name of the thing it belongs to (this episode)
        self.clear()

    def clear(self) -> None:
        self.owner = {}
        for slots in self._slots.values():
            for mocap, geoms in slots:
                self.data.mocap_pos[mocap] = (0.0, 0.0, PARK_Z)
                for g in geoms.values():
                    self.model.geom_rgba[g, 3] = 0.0

    def set_things(self, things: tuple[Thing, ...]) -> None:
        self.clear()
        used: dict[str, int] = {}
        for t in things:
            k = used.get(t.kind, 0)
            if k >= len(self._slots[t.kind]):
                raise ValueError(f"scene holds at most {POOL[t.kind]} things of kind {t.kind!r}")
            used[t.kind] = k + 1
            mocap, geoms = self._slots[t.kind][k]
            self.data.mocap_pos[mocap] = (t.x, t.y, 0.0)
            self.data.mocap_quat[mocap] = yaw_quat(t.yaw)
            self._shape(t, geoms)
            self.owner.update({g: t.name for g in geoms.values()})

    def _shape(self, t: Thing, geoms: dict[str, int]) -> None:
        m = self.model
        rgba = COLOURS[t.colour]
        for g in geoms.values():
            m.geom_size[g] = self._base_size[g] * t.scale
            m.geom_pos[g] = self._base_pos[g] * t.scale
            m.geom_rgba[g] = rgba
        if t.kind == "letter_box":
            if t.letter not in self._materials:
                raise ValueError(f"no texture for letter {t.letter!r}; have {LETTERS[1:]}")
            for part, g in geoms.items():
                if part.startswith("decal"):
                    m.geom_matid[g] = self._materials[t.letter]
                    m.geom_rgba[g] = (1.0, 1.0, 1.0, 1.0)
        elif t.kind in ("gate", "bar"):
            offset = t.width / 2 + POST_H
            top = GATE_HEIGHT if t.kind == "gate" else t.height + BAR_THICKNESS + 0.2
            for side, part in ((-1, "post0"), (1, "post1")):
                g = geoms[part]
                m.geom_size[g] = (POST_H, POST_H, top / 2)
                m.geom_pos[g] = (0.0, side * offset, top / 2)
            if t.kind == "gate":
                g = geoms["top"]
                m.geom_size[g] = (POST_H, offset + POST_H, 0.05)
                m.geom_pos[g] = (0.0, 0.0, GATE_HEIGHT - 0.05)
            else:
                g = geoms["bar"]
                m.geom_size[g] = (BAR_THICKNESS / 2, offset + POST_H, BAR_THICKNESS / 2)
                m.geom_pos[g] = (0.0, 0.0, t.height + BAR_THICKNESS / 2)
                for part in ("post0", "post1"):
                    m.geom_rgba[geoms[part]] = COLOURS["grey"]
        for g in geoms.values():
            rbound, half = _bounds(int(m.geom_type[g]), m.geom_size[g])
            m.geom_rbound[g] = rbound
            m.geom_aabb[g] = (0.0, 0.0, 0.0, *half)


class SceneRenderer:
    """Renders the kinematic robot's front camera for a scenario's things at a robot state."""

    def __init__(self, height: int = 96, width: int = 96, fovy: float = DEFAULT_FOVY, tilt: float = DEFAULT_TILT):
        if height < 8 or width < 8:
            raise ValueError(f"image size must be at least 8x8, got {height}x{width}")
        self.height, self.width = int(height), int(width)
        xml, assets = build_xml(self.width, self.height, fovy, tilt)
        self.model = mujoco.MjModel.from_xml_string(xml, assets=assets)
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._robot = self.model.body("robot").mocapid[0]
        self.pool = ThingPool(self.model, self.data)
        self._option = mujoco.MjvOption()
        self._option.geomgroup[ROBOT_GROUP] = 0

    # -- scene content ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.pool.clear()

    def set_things(self, things: tuple[Thing, ...]) -> None:
        self.pool.set_things(things)

    # -- rendering -------------------------------------------------------------------------------
    def place_robot(self, state: BaseState) -> None:
        self.data.mocap_pos[self._robot] = (state.x, state.y, NOMINAL_BASE_HEIGHT + state.body_height)
        self.data.mocap_quat[self._robot] = yaw_pitch_quat(state.yaw, state.pitch)
        mujoco.mj_forward(self.model, self.data)

    def render(self, state: BaseState) -> np.ndarray:
        """The front camera's RGB image (uint8, height x width x 3) with the robot at `state`."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        self.place_robot(state)
        self._renderer.update_scene(self.data, camera="front", scene_option=self._option)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
