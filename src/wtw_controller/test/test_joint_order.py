"""Policy (FL, FR, RL, RR) <-> SDK (FR, FL, RR, RL) joint order."""

import numpy as np
import pytest

from wtw_controller.joint_order import (
    POLICY_JOINT_NAMES,
    POLICY_TO_SDK,
    SDK_JOINT_NAMES,
    index_by_name,
    policy_to_sdk,
    sdk_to_policy,
)


def test_map_moves_each_named_joint_to_its_place():
    policy_values = np.arange(12.0)  # value i belongs to POLICY_JOINT_NAMES[i]
    sdk_values = policy_to_sdk(policy_values)
    for name, value in zip(SDK_JOINT_NAMES, sdk_values, strict=True):
        assert POLICY_JOINT_NAMES[int(value)] == name


def test_round_trip_and_self_inverse():
    x = np.random.default_rng(1).standard_normal((5, 12))
    np.testing.assert_array_equal(sdk_to_policy(policy_to_sdk(x)), x)
    np.testing.assert_array_equal(policy_to_sdk(policy_to_sdk(x)), x)
    assert POLICY_TO_SDK.tolist() == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]


def test_sdk_names_match_the_bridge():
    from go2_bridge.go2 import JOINT_NAMES

    assert JOINT_NAMES == SDK_JOINT_NAMES


def test_index_by_name_any_order_and_missing():
    shuffled = list(reversed(SDK_JOINT_NAMES))
    idx = index_by_name(shuffled)
    assert [shuffled[i] for i in idx] == list(SDK_JOINT_NAMES)
    with pytest.raises(KeyError, match="RL_calf_joint"):
        index_by_name(SDK_JOINT_NAMES[:-1])


def test_joint_limits_match_the_bridge():
    from go2_bridge.go2 import Q_MAX, Q_MIN
    from wtw_controller import limits

    np.testing.assert_array_equal(limits.Q_MIN, Q_MIN)
    np.testing.assert_array_equal(limits.Q_MAX, Q_MAX)


def test_targets_beyond_the_range_become_limit_plus_feed_forward():
    from wtw_controller.limits import INSIDE, Q_MAX, Q_MIN, split_targets

    wanted = np.array([0.0, 0.8, -1.5] * 4)
    wanted[2] = -0.5  # FR calf past its -0.83776 stop
    wanted[3] = -1.2  # FL hip past -1.0472
    q, ff = split_targets(wanted, kp=20.0)
    assert q[2] == -0.83776 - INSIDE and ff[2] == pytest.approx(20.0 * (-0.5 + 0.83776 + INSIDE))
    assert q[3] == -1.0472 + INSIDE and ff[3] == pytest.approx(20.0 * (-1.2 + 1.0472 - INSIDE))
    inside = np.r_[0:2, 4:12]
    np.testing.assert_array_equal(q[inside], wanted[inside])
    assert not ff[inside].any()
    assert np.all(q >= Q_MIN) and np.all(q <= Q_MAX)
    # the motor's PD torque at any measured position is that of the original targets
    q_m = np.linspace(-1.0, 1.0, 12)
    np.testing.assert_allclose(20.0 * (q - q_m) + ff, 20.0 * (wanted - q_m), atol=1e-12)
