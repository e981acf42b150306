"""The controller's leg geometry (wtw_controller.posture) against the MuJoCo Menagerie Go2's own kinematics: a
posture's joint angles put every foot where the nominal pose has it, once the trunk is moved and pitched."""

import math

import numpy as np
import pytest

from more_sim.go2 import Go2Body
from wtw_controller.posture import posture_pose
from wtw_controller.velocity import DEFAULT_POSE_SDK

NOMINAL = np.array(DEFAULT_POSE_SDK)


@pytest.fixture(scope="module")
def body():
    return Go2Body()


def feet_in_trunk_frame(body, pose):
    body.reset(pose)
    rotation, centre = body.base_rotation, body.base_position
    return (body.data.geom_xpos[body.feet] - centre) @ rotation  # rows: R^T (foot - centre)


@pytest.mark.parametrize(("body_height", "pitch"), [(-0.16, 0.0), (0.0, 0.38), (-0.08, -0.25), (-0.12, 0.2)])
def test_posture_keeps_the_feet_of_the_nominal_pose(body, body_height, pitch):
    nominal = feet_in_trunk_frame(body, NOMINAL)
    moved = feet_in_trunk_frame(body, posture_pose(NOMINAL, body_height, pitch))
    c, s = math.cos(pitch), math.sin(pitch)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # nose down by `pitch` about the trunk's y
    expected = (nominal - [0.0, 0.0, body_height]) @ rotation  # R^T (foot - moved centre)
    np.testing.assert_allclose(moved, expected, atol=1.5e-3)  # the model's feet sit 2 mm off the calf's line
