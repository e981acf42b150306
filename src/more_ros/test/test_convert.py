"""QuadrupedCommand <-> contract vector conversions (needs the built more_msgs)."""

import math

import numpy as np
import pytest

from more_common.action_contract import ACTION_NAMES, INDEX, InvalidActionError, stand_command
from more_ros.convert import command_to_msg, msg_to_command, stop_msg

pytestmark = pytest.mark.ros


def test_fields_follow_the_contract_order():
    action = np.array([0.1 * (i + 1) for i in range(12)])
    action[INDEX["terminate"]] = 1.0
    msg = command_to_msg(action, bins=np.arange(12), q_values=np.linspace(0, 1, 12))
    for i, name in enumerate(ACTION_NAMES[:-1]):
        assert getattr(msg, name) == pytest.approx(action[i], abs=1e-6)
    assert msg.terminate is True
    assert list(msg.bins) == list(range(12))
    np.testing.assert_allclose(msg_to_command(msg), action, atol=1e-6)


def test_defaults_mark_non_policy_commands():
    msg = command_to_msg(stand_command())
    assert list(msg.bins) == [-1] * 12
    assert all(math.isnan(q) for q in msg.q_values)
    assert msg.header.frame_id == "base_link"


def test_stop_is_the_stand_command():
    msg = stop_msg()
    np.testing.assert_allclose(msg_to_command(msg), stand_command(), atol=1e-6)
    assert (msg.vx, msg.vy, msg.wz, msg.terminate) == (0.0, 0.0, 0.0, False)


def test_wrong_shape_raises():
    with pytest.raises(InvalidActionError, match="shape"):
        command_to_msg(np.zeros(13))
