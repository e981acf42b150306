"""A Unitree Go2 in MJCF, written from the published geometry and masses (no copied model files).

Kinematics (from unitree_ros2/Go2 documentation): hip joints at (+-0.1934, +-0.0465, 0) from the base
centre (axis x), thigh joints a further (0, +-0.0955, 0) out (axis y), calf joints 0.213 m below the
thigh joint (axis y), feet 0.213 m below the calf joint (sphere r 0.022). Masses: base 6.921, hip 0.678,
thigh 1.152, calf + foot 0.241 kg (15.2 kg in all). Inertias are those of simple solids of those masses
(approximations; the real link inertias are not needed to test a bridge). Joint ranges are the Go2's
limits. Sign conventions equal the SDK's: a positive thigh angle swings the foot backwards, a positive
hip angle moves the foot to the robot's left.

Bodies, joints and actuators are listed in SDK motor order (FR, FL, RR, RL x hip, thigh, calf), so
qpos[7 + i], qvel[6 + i] and ctrl[i] belong to motor i. Each actuator is a PD motor
    force = kp (q* - q) + kd (dq* - dq) + tau  =  ctrl - kp q - kd dq,  ctrl = kp q* + kd dq* + tau,
clamped to the torque limit; kp and kd live in the actuator's bias and the implicit integrator
treats the damping term implicitly (stable with kd up to the limit at 2 ms steps).
"""

from __future__ import annotations

from go2_bridge.go2 import JOINT_NAMES, LEGS, Q_MAX, Q_MIN, TORQUE_MAX

HIP_OFFSET = (0.1934, 0.0465)
THIGH_OFFSET = 0.0955
THIGH_LENGTH = 0.213
CALF_LENGTH = 0.213
FOOT_RADIUS = 0.022
BASE_SIZE = (0.3762, 0.0935, 0.114)  # full box extents of the trunk [m]
MASSES = {"base": 6.921, "hip": 0.678, "thigh": 1.152, "calf": 0.241}
ARMATURE = 0.01  # reflected rotor inertia [kg m^2] (typical for the Go2's geared motors)
JOINT_DAMPING = 0.02  # [Nm s/rad] gearbox friction
TOTAL_MASS = MASSES["base"] + 4 * (MASSES["hip"] + MASSES["thigh"] + MASSES["calf"])


def _box_inertia(mass: float, size: tuple[float, float, float]) -> tuple[float, float, float]:
    x, y, z = size
    return (mass * (y * y + z * z) / 12, mass * (x * x + z * z) / 12, mass * (x * x + y * y) / 12)


def _rod_inertia(mass: float, length: float, radius: float) -> tuple[float, float, float]:
    side = mass * (3 * radius * radius + length * length) / 12
    return (side, side, mass * radius * radius / 2)


def _fmt(values: tuple[float, ...] | list[float]) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _leg(leg: str, index: int) -> str:
    front = leg[0] == "F"
    left = leg[1] == "L"
    sx = 1.0 if front else -1.0
    sy = 1.0 if left else -1.0
    i0 = 3 * index
    ranges = [f"{Q_MIN[i]:.5f} {Q_MAX[i]:.5f}" for i in range(i0, i0 + 3)]
    hip_inertia = _rod_inertia(MASSES["hip"], 0.04, 0.046)
    thigh_inertia = _rod_inertia(MASSES["thigh"], THIGH_LENGTH, 0.03)
    calf_inertia = _rod_inertia(MASSES["calf"], CALF_LENGTH, 0.012)
    hip_pos = (sx * HIP_OFFSET[0], sy * HIP_OFFSET[1], 0.0)
    return f"""
      <body name="{leg}_hip" pos="{_fmt(hip_pos)}">
        <inertial pos="0 {sy * 0.03:.4f} 0" mass="{MASSES["hip"]}" diaginertia="{_fmt(hip_inertia)}"/>
        <joint name="{JOINT_NAMES[i0]}" class="leg" axis="1 0 0" range="{ranges[0]}"/>
        <geom class="robot" type="cylinder" size="0.046 0.02" pos="0 {sy * 0.05:.4f} 0" quat="0.7071068 0.7071068 0 0"/>
        <body name="{leg}_thigh" pos="0 {sy * THIGH_OFFSET:.4f} 0">
          <inertial pos="0 0 -0.04" mass="{MASSES["thigh"]}" diaginertia="{_fmt(thigh_inertia)}"/>
          <joint name="{JOINT_NAMES[i0 + 1]}" class="leg" axis="0 1 0" range="{ranges[1]}"/>
          <geom class="robot" type="capsule" size="0.022" fromto="0 0 0 0 0 {-THIGH_LENGTH}"/>
          <body name="{leg}_calf" pos="0 0 {-THIGH_LENGTH}">
            <inertial pos="0 0 -0.1" mass="{MASSES["calf"]}" diaginertia="{_fmt(calf_inertia)}"/>
            <joint name="{JOINT_NAMES[i0 + 2]}" class="leg" axis="0 1 0" range="{ranges[2]}"/>
            <geom class="robot" type="capsule" size="0.012" fromto="0 0 0 0 0 {-(CALF_LENGTH - FOOT_RADIUS)}"/>
            <geom name="{leg}_foot" class="robot" type="sphere" size="{FOOT_RADIUS}" pos="0 0 {-CALF_LENGTH}"
                  friction="1.0 0.02 0.01" mass="0"/>
          </body>
        </body>
      </body>"""


def go2_mjcf(timestep: float = 0.002) -> str:
    """The MJCF text of the Go2 on a flat floor."""
    base_inertia = _box_inertia(MASSES["base"], BASE_SIZE)
    half = tuple(s / 2 for s in BASE_SIZE)
    legs = "".join(_leg(leg, i) for i, leg in enumerate(LEGS))
    motors = "\n".join(
        f'    <general name="{name}_motor" joint="{name}" gaintype="fixed" gainprm="1" biastype="affine" '
        f'biasprm="0 0 0" forcelimited="true" forcerange="{-TORQUE_MAX[i]:.4f} {TORQUE_MAX[i]:.4f}"/>'
        for i, name in enumerate(JOINT_NAMES)
    )
    return f"""<mujoco model="go2_written">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast"/>
  <default>
    <default class="leg">
      <joint armature="{ARMATURE}" damping="{JOINT_DAMPING}" limited="true"/>
    </default>
    <default class="robot">
      <geom contype="1" conaffinity="0" condim="3" friction="0.8 0.02 0.01" mass="0" rgba="0.3 0.3 0.35 1"/>
    </default>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 0.05" contype="0" conaffinity="1" friction="1.0 0.02 0.01"/>
    <body name="base" pos="0 0 0.3">
      <freejoint name="root"/>
      <inertial pos="0 0 0" mass="{MASSES["base"]}" diaginertia="{_fmt(base_inertia)}"/>
      <geom name="trunk" class="robot" type="box" size="{_fmt(half)}"/>
      <site name="imu" pos="0 0 0"/>{legs}
    </body>
  </worldbody>
  <actuator>
{motors}
  </actuator>
  <sensor>
    <framequat name="imu_quat" objtype="site" objname="imu"/>
    <gyro name="imu_gyro" site="imu"/>
    <accelerometer name="imu_acc" site="imu"/>
  </sensor>
</mujoco>
"""
