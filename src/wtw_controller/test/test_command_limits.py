"""The deployment's caps on the contract command, by hand: which dims each one clips, that the caller's command and
non-finite values are left alone, and the core applying both on every step."""

import numpy as np
import pytest

from more_common.action_contract import INDEX, action_from_mapping
from wtw_controller.command_limits import cap_speed, cap_yaw_rate
from wtw_controller.core import Controller
from wtw_controller.velocity import VelocityBackend


def test_each_cap_clips_its_own_dims_in_a_copy():
    command = action_from_mapping({"vx": 0.9, "vy": -0.55, "wz": -0.8, "body_height": -0.1})
    speed = cap_speed(command, 0.4)
    yaw = cap_yaw_rate(command, 0.5)
    expected_speed, expected_yaw = command.copy(), command.copy()
    expected_speed[INDEX["vx"]], expected_speed[INDEX["vy"]] = 0.4, -0.4
    expected_yaw[INDEX["wz"]] = -0.5
    np.testing.assert_array_equal(speed, expected_speed)
    np.testing.assert_array_equal(yaw, expected_yaw)
    assert command[INDEX["vx"]] == 0.9 and command[INDEX["wz"]] == -0.8  # the caller's command is left alone
    assert cap_speed(command, 0.0) is command and cap_yaw_rate(command, 0.0) is command  # 0: no cap
    assert cap_speed(None, 0.4) is None and cap_yaw_rate(None, 0.5) is None


def test_a_non_finite_value_is_left_for_the_core_to_reject():
    bad = action_from_mapping({"vx": 0.9})
    bad[INDEX["wz"]] = np.nan
    capped = cap_yaw_rate(cap_speed(bad, 0.4), 0.5)
    assert np.isnan(capped[INDEX["wz"]]) and capped[INDEX["vx"]] == 0.4


@pytest.mark.parametrize("bad", [np.zeros(1), np.float64(0.3), np.zeros((2, 12)), ["fast"] * 12])
def test_a_command_that_is_not_12_numbers_is_left_for_the_core_to_reject(bad):
    assert cap_speed(bad, 0.4) is bad and cap_yaw_rate(bad, 0.5) is bad


@pytest.mark.parametrize("bad", [np.zeros(1), np.zeros((2, 12))])
def test_the_capped_core_answers_a_wrongly_shaped_command_with_a_stand(bad):
    controller = standing_controller(max_speed=0.4, max_yaw_rate=0.5)
    controller.on_command(bad, 0.0)
    result = controller.step(0.0)
    assert result.invalid_input and result.status.endswith("standing") and result.targets is not None
    assert result.commands[:3].tolist() == [0.0, 0.0, 0.0]


class ConstantPolicy:
    def __call__(self, observation):
        return np.zeros(12, dtype=np.float32)


def standing_controller(**limits) -> Controller:
    controller = Controller(VelocityBackend(ConstantPolicy()), **limits)
    controller.on_joint_state(np.zeros(12), np.zeros(12), 0.0)
    controller.on_imu(np.array([0.0, 0.0, 0.0, 1.0]), 0.0)
    return controller


def test_the_core_applies_max_speed_and_max_yaw_rate_on_every_step():
    controller = standing_controller(max_speed=0.3)
    controller.on_command(action_from_mapping({"vx": -0.8, "vy": 0.45, "wz": 0.7}), 0.0)
    assert controller.step(0.0).commands[:3].tolist() == pytest.approx([-0.3, 0.3, 0.7])  # wz is not a speed
    controller = standing_controller(max_speed=0.3, max_yaw_rate=0.5)
    controller.on_command(action_from_mapping({"vx": -0.8, "vy": 0.45, "wz": 0.7}), 0.0)
    assert controller.step(0.0).commands[:3].tolist() == pytest.approx([-0.3, 0.3, 0.5])
    controller.on_command(action_from_mapping({"vx": 0.2, "wz": -0.9}), 0.02)
    assert controller.step(0.02).commands[:3].tolist() == pytest.approx([0.2, 0.0, -0.5])


@pytest.mark.parametrize("name", ["max_speed", "max_yaw_rate"])
@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_limits_are_refused_naming_them(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        Controller(VelocityBackend(ConstantPolicy()), **{name: bad})
