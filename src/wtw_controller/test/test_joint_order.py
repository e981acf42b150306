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
    from go2_bridge.go2 import Q_MAX, Q_MIN, TORQUE_MAX
    from wtw_controller import limits

    np.testing.assert_array_equal(limits.Q_MIN, Q_MIN)
    np.testing.assert_array_equal(limits.Q_MAX, Q_MAX)
    np.testing.assert_array_equal(limits.TORQUE_MAX, TORQUE_MAX)


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


def test_feed_forward_is_capped_at_the_torque_limit_and_the_lowcmd_is_unchanged():
    """A target 3 rad past the calf stop at kp 20 asks 60 Nm: capped at 45.43 Nm, which the bridge's check accepts;
    the bridge clamps the feed-forward to the limit first itself, so its LowCmd is bit for bit what the uncapped
    feed-forward gave (random targets up to 4 rad outside the range, random measured positions)."""
    from go2_bridge.inputs import check_targets
    from go2_bridge.limits import limit_commands
    from go2_bridge.lowcmd import MotorCommands
    from go2_bridge.safety import JointTargetsData
    from wtw_controller.limits import Q_MAX, Q_MIN, TORQUE_MAX, split_targets

    kp = 20.0
    wanted = np.array([0.0, 0.8, -1.5] * 4)
    wanted[2] = -0.83776 + 3.0
    q, ff = split_targets(wanted, kp)
    assert ff[2] == 45.43 and not ff[np.r_[0:2, 3:12]].any()
    zeros = np.zeros(12)
    assert check_targets(JointTargetsData(q, zeros, np.full(12, kp), np.full(12, 0.5), ff), 100.0, 10.0) == []

    rng = np.random.default_rng(0)
    for _ in range(500):
        q_star = rng.uniform(Q_MIN - 4.0, Q_MAX + 4.0)
        q, capped = split_targets(q_star, kp)
        uncapped = kp * (q_star - q)
        q_m = rng.uniform(Q_MIN - 0.2, Q_MAX + 0.2)
        a, b = (limit_commands(MotorCommands(q, zeros, np.full(12, kp), np.full(12, 0.5), tau), q_m, 100.0, 10.0)
                for tau in (capped, uncapped))  # fmt: skip
        for field in ("q", "dq", "kp", "kd", "tau"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert np.all(np.abs(capped) <= TORQUE_MAX)
