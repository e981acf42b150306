"""The six-task world around the physics Go2: the tasks' things, the floor, the RealSense D435 on the robot's head.

Pure Python (MuJoCo + numpy). The world is `more_sim.scene.build_xml` without the kinematic camera body and with
collisions on: the floor and every thing (balls, boxes, gate and bar posts, the bar, the container's walls) are
static collision geoms on pooled mocap bodies, so the walking robot stands on the floor and is stopped by what it
walks into (letter decals never collide). `Go2Body` attaches Menagerie's Go2 to it under `go2/`.

[Camera] A RealSense D435 colour camera on the head (`D435_MOUNT`): 0.28 m ahead of and 0.06 m above the trunk
origin (the top of the head, where the kinematic embodiment has its camera), looking along the trunk's x axis
pitched down by 0.2 rad, vertical field of view 42 degrees (the D435's colour sensor: 69 x 42 degrees at 16:9).
Pixels are square, so the horizontal field of view follows from the image's aspect ratio: 69 degrees at 16:9
(the full sensor), 60.3 at 3:2 (models/demo's 96 x 64), 54.7 at 4:3 (the robot's 640 x 480 stream: the D435
keeps the vertical angle and crops the sides for 4:3 modes), 42 at 1:1. Rendering at the policy's input size thus
equals cropping the sensor's 16:9 frame to the policy's aspect ratio and resizing it, with no distortion. The
robot's own geoms (groups 2 and 3) are hidden from this camera; a third-person view (`render_view`) shows them.

[Contacts] MuJoCo's midphase is off in this world (it would use bounding volumes compiled for the pool's XML
sizes; the broad phase uses per-geom bounds that ThingPool updates). `touched()` names the thing a robot geom is
in contact with ('' if none): any contact, feet included (a foot on a container wall or a gate post is a
collision in this world). [Falls] `fallen()`: the trunk tilted
more than FALL_TILT_RAD (the bridge's damping limit) or a trunk geom touching the floor.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from more_sim.base_tracker import BaseState
from more_sim.go2.body import Go2Body
from more_sim.go2.model import PREFIX, CameraMount
from more_sim.scene import ThingPool, build_xml
from more_sim.world import NOMINAL_BASE_HEIGHT, Thing

D435_VFOV_DEG = 42.0  # RealSense D435 colour sensor: 69 x 42 degrees (H x V) at 16:9
D435_MOUNT = CameraMount(name="d435", pos=(0.28, 0.0, 0.06), tilt_rad=0.2, fovy_deg=D435_VFOV_DEG)
STAND_JOINT_POS: tuple[float, ...] = (0.0, 0.8, -1.5) * 4  # SDK order: the walking policy's default pose
FALL_TILT_RAD = 0.8  # go2_bridge's SafetyConfig.max_tilt_rad: the bridge damps beyond it
ROBOT_RGBA = (0.22, 0.22, 0.24, 1.0)  # collision primitives in the third-person view (no visual meshes)
VIEW_DISTANCE = 2.2  # [m] third-person camera from the point it looks at
VIEW_ELEVATION = -22.0  # [deg]
VIEW_AZIMUTH_OFFSET = 25.0  # [deg] behind and to the right of the heading


def horizontal_fov_deg(height: int, width: int, vfov_deg: float = D435_VFOV_DEG) -> float:
    """The horizontal field of view of a square-pixel image of this size with the given vertical one."""
    return math.degrees(2.0 * math.atan(width / height * math.tan(math.radians(vfov_deg) / 2.0)))


def pose_state(position: np.ndarray, rotation: np.ndarray, velocity: tuple[float, float, float]) -> BaseState:
    """The task's view of the robot: trunk position and heading, body height above nominal, pitch (nose down +)."""
    heading = math.atan2(rotation[1, 0], rotation[0, 0])
    pitch = math.asin(max(-1.0, min(1.0, -float(rotation[2, 0]))))
    vx, vy, wz = velocity
    return BaseState(
        x=float(position[0]),
        y=float(position[1]),
        yaw=heading,
        vx=vx,
        vy=vy,
        wz=wz,
        body_height=float(position[2]) - NOMINAL_BASE_HEIGHT,
        pitch=pitch,
    )


class Go2World:
    """One Go2 in the six-task world. `image_height` x `image_width`: the head camera's image; `view_size`: the
    third-person view's (height, width). Not thread-safe; one renderer per process (MuJoCo's EGL rule)."""

    def __init__(
        self,
        image_height: int = 96,
        image_width: int = 96,
        timestep: float = 0.002,
        actuator_lag_s: float = 0.015,
        visual: bool = False,
        view_size: tuple[int, int] = (240, 320),
        camera: CameraMount = D435_MOUNT,
    ) -> None:
        if min(image_height, image_width) < 8:
            raise ValueError(f"image size must be at least 8x8, got {image_height}x{image_width}")
        self.image_size = (int(image_height), int(image_width))
        self.view_size = (int(view_size[0]), int(view_size[1]))
        self.visual = visual
        xml, assets = build_xml(
            max(image_width, view_size[1]), max(image_height, view_size[0]), kinematic_robot=False, collide=True
        )
        self.body = Go2Body(xml, timestep, actuator_lag_s, visual, camera, world_assets=assets)
        self.model, self.data = self.body.model, self.body.data
        m = self.model
        # The pooled things are moved and resized per episode; MuJoCo's midphase would prune with the bounding
        # volumes compiled for the XML's sizes and miss contacts with them. The broad phase uses the per-geom
        # bounds ThingPool keeps up to date, and the world has few bodies, so the midphase is simply off.
        m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_MIDPHASE
        self.pool = ThingPool(m, self.data)
        self.camera = camera
        self._robot_geoms = np.array([g for g in range(m.ngeom) if self.body.robot_touches(g)])
        self._trunk_geoms = {g for g in self._robot_geoms.tolist() if m.geom_bodyid[g] == self.body.trunk}
        self._floor = m.geom("floor").id
        if not visual:
            m.geom_rgba[self._robot_geoms] = ROBOT_RGBA
        self._is_robot = np.zeros(m.ngeom, dtype=bool)
        self._is_robot[self._robot_geoms] = True
        self._head_option = mujoco.MjvOption()
        self._head_option.geomgroup[2] = self._head_option.geomgroup[3] = 0  # the robot's visual and collision geoms
        self._view_option = mujoco.MjvOption()
        self._view_option.geomgroup[3] = 0 if visual else 1
        self._view_camera = mujoco.MjvCamera()
        self._view_camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self._view_camera.distance = VIEW_DISTANCE
        self._view_camera.elevation = VIEW_ELEVATION
        self._head: mujoco.Renderer | None = None
        self._view: mujoco.Renderer | None = None

    @property
    def hfov_deg(self) -> float:
        return horizontal_fov_deg(*self.image_size, self.camera.fovy_deg)

    # -- the scene and the robot's place in it --------------------------------------------------------
    def set_things(self, things: tuple[Thing, ...]) -> None:
        self.pool.set_things(things)
        mujoco.mj_forward(self.model, self.data)

    def place(self, x: float, y: float, yaw: float, joint_pos: tuple[float, ...] = STAND_JOINT_POS) -> None:
        """The robot at rest at (x, y, yaw), feet on the floor, joints at `joint_pos` (its clock keeps running)."""
        self.body.place(np.asarray(joint_pos), (x, y), yaw)

    # -- what happened ----------------------------------------------------------------------------------
    def touched(self) -> str:
        """The name of a thing the robot is in contact with now ('' if none)."""
        d = self.data
        if d.ncon == 0:
            return ""
        pairs = d.contact.geom[: d.ncon]
        owner = self.pool.owner
        for a, b in pairs.tolist():
            if self._is_robot[a] and b in owner:
                return owner[b]
            if self._is_robot[b] and a in owner:
                return owner[a]
        return ""

    def fallen(self) -> bool:
        if self.body.tilt() > FALL_TILT_RAD:
            return True
        d = self.data
        for a, b in d.contact.geom[: d.ncon].tolist():
            if (a == self._floor and b in self._trunk_geoms) or (b == self._floor and a in self._trunk_geoms):
                return True
        return False

    def state(self, velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> BaseState:
        """The trunk's true pose as the tasks see it, with the velocity the caller measured."""
        return pose_state(self.body.base_position, self.body.base_rotation, velocity)

    # -- images -----------------------------------------------------------------------------------------
    def render_head(self) -> np.ndarray:
        """The head camera's RGB image (uint8, H x W x 3), the robot's own geoms hidden."""
        if self._head is None:
            self._head = mujoco.Renderer(self.model, *self.image_size)
        self._head.update_scene(self.data, camera=PREFIX + self.camera.name, scene_option=self._head_option)
        return self._head.render().copy()

    def render_view(self) -> np.ndarray:
        """A third-person view of the robot from behind and to its right, looking 0.6 m ahead of it."""
        if self._view is None:
            self._view = mujoco.Renderer(self.model, *self.view_size)
        s = self.state()
        cam = self._view_camera
        cam.lookat[:] = (s.x + 0.6 * math.cos(s.yaw), s.y + 0.6 * math.sin(s.yaw), 0.25)
        cam.azimuth = math.degrees(s.yaw) + VIEW_AZIMUTH_OFFSET
        self._view.update_scene(self.data, camera=cam, scene_option=self._view_option)
        return self._view.render().copy()

    def close(self) -> None:
        for r in (self._head, self._view):
            if r is not None:
                r.close()
        self._head = self._view = None
