"""Action -> joint targets: scales, hip reduction, default pose, SDK order."""

import numpy as np

from wtw_controller.actions import action_to_targets
from wtw_controller.config import WtwConfig


def test_zero_action_is_the_default_pose_in_sdk_order():
    from go2_bridge.go2 import STAND_POSE

    np.testing.assert_allclose(action_to_targets(np.zeros(12), WtwConfig()), STAND_POSE)


def test_by_hand():
    a = np.array([1.0, 2.0, -1.0, 0.0, 0.0, 0.0, 20.0, 0.0, 0.0, -4.0, 0.0, 1.0])  # policy order
    t = action_to_targets(a, WtwConfig())
    # FR (policy 3..5) all zero -> default FR
    np.testing.assert_allclose(t[0:3], [-0.1, 0.8, -1.5])
    # FL (policy 0..2): hip 1*0.25*0.5, thigh 2*0.25, calf -1*0.25
    np.testing.assert_allclose(t[3:6], [0.1 + 0.125, 0.8 + 0.5, -1.5 - 0.25])
    # RR (policy 9..11): hip -4*0.125, calf +0.25
    np.testing.assert_allclose(t[6:9], [-0.1 - 0.5, 1.0, -1.5 + 0.25])
    # RL (policy 6..8): hip 20 clipped to 10 -> 10*0.125
    np.testing.assert_allclose(t[9:12], [0.1 + 1.25, 1.0, -1.5])
