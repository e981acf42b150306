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
