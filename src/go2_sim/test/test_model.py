"""The self-written Go2 MJCF: masses, joint ranges, and forward kinematics against the closed form."""

import math

import mujoco
import numpy as np
import pytest

from go2_bridge.go2 import FOOT_NAMES, JOINT_NAMES, Q_MAX, Q_MIN, TORQUE_MAX
from go2_sim.model import go2_mjcf


@pytest.fixture(scope="module")
def model():
    return mujoco.MjModel.from_xml_string(go2_mjcf())


def test_mass_is_the_published_total(model):
    assert math.isclose(model.body_mass.sum(), 6.921 + 4 * (0.678 + 1.152 + 0.241), rel_tol=1e-9)


def test_joints_in_sdk_order_with_go2_limits(model):
    for i, name in enumerate(JOINT_NAMES):
        j = model.joint(name)
        assert j.qposadr[0] == 7 + i and j.dofadr[0] == 6 + i
        np.testing.assert_allclose(j.range, [Q_MIN[i], Q_MAX[i]], atol=1e-5)
        act = model.actuator(f"{name}_motor")
        np.testing.assert_allclose(act.forcerange, [-TORQUE_MAX[i], TORQUE_MAX[i]], atol=1e-4)


@pytest.mark.parametrize("hip,thigh,calf", [(0.0, 0.0, -0.9), (0.3, 0.8, -1.5), (-0.5, 1.2, -2.5)])
def test_foot_positions_match_closed_form(model, hip, thigh, calf):
    data = mujoco.MjData(model)
    data.qpos[:7] = [0, 0, 0, 1, 0, 0, 0]
    data.qpos[7:] = np.tile([hip, thigh, calf], 4)
    mujoco.mj_kinematics(model, data)
    lx = ly = 0.213
    for foot in FOOT_NAMES:
        sx = 1 if foot[0] == "F" else -1
        sy = 1 if foot[1] == "L" else -1
        x = -lx * math.sin(thigh) - ly * math.sin(thigh + calf)
        z = -lx * math.cos(thigh) - ly * math.cos(thigh + calf)
        ch, sh = math.cos(hip), math.sin(hip)
        expected = np.array([sx * 0.1934 + x, sy * 0.0465 + sy * 0.0955 * ch - z * sh, sy * 0.0955 * sh + z * ch])
        np.testing.assert_allclose(data.geom(foot).xpos, expected, atol=1e-9, err_msg=foot)
