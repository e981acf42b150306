"""QuadrupedCommand <-> contract vector conversions (needs the built more_msgs)."""

import math
import re

import numpy as np
import pytest

from more_common.action_contract import ACTION_NAMES, INDEX, InvalidActionError, stand_command
from more_ros.convert import MAX_STAMP_NS, command_to_msg, msg_to_command, ns_to_stamp, stamp_to_ns, stop_msg

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


def test_stamp_boundaries_round_trip():
    # int32 seconds: the last representable instant is 2^31 - 1 s + 999999999 ns.
    assert MAX_STAMP_NS == 2_147_483_647_999_999_999
    for ns, sec, nanosec in [
        (0, 0, 0),
        (1, 0, 1),
        (999_999_999, 0, 999_999_999),
        (1_000_000_000, 1, 0),
        (1_700_000_000_123_456_789, 1_700_000_000, 123_456_789),
        (2_147_483_647_999_999_999, 2_147_483_647, 999_999_999),
    ]:
        stamp = ns_to_stamp(ns)
        assert (stamp.sec, stamp.nanosec) == (sec, nanosec)
        assert stamp_to_ns(stamp) == ns
    assert ns_to_stamp(np.int64(5)).nanosec == 5


@pytest.mark.parametrize("ns", [-1, -1_000_000_000, 2_147_483_648_000_000_000, 2**63])
def test_out_of_range_stamps_raise_naming_the_value(ns):
    with pytest.raises(ValueError, match=f"stamp {ns} ns is outside"):
        ns_to_stamp(ns)


@pytest.mark.parametrize("ns", [1.5, float("nan"), "5", None])
def test_non_integer_stamps_raise_naming_the_value(ns):
    with pytest.raises(ValueError, match="integer number of nanoseconds, got " + re.escape(repr(ns))):
        ns_to_stamp(ns)
