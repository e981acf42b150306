"""The kinematic base follows commands like a first-order system, against closed-form references."""

import math

import numpy as np
import pytest

from more_common.action_contract import INDEX, InvalidActionError, action_from_mapping
from more_sim.base_tracker import BaseState, TrackerConfig, step_base


def run(command, seconds, dt=0.02, tau=0.25, state=None):
    state = state or BaseState()
    cfg = TrackerConfig(time_constant_s=tau)
    for _ in range(round(seconds / dt)):
        state = step_base(state, command, dt, cfg)
    return state


def test_velocity_is_a_first_order_lag():
    cmd = action_from_mapping({"vx": 0.8})
    for t in (0.1, 0.25, 1.0):
        # v(t) = v_cmd (1 - exp(-t / tau)), independent of the step size.
        for dt in (0.01, 0.05):
            s = run(cmd, t, dt=dt)
            assert s.vx == pytest.approx(0.8 * (1 - math.exp(-t / 0.25)), rel=1e-9)


def test_straight_line_distance_matches_closed_form():
    # x(T) = v (T - tau (1 - exp(-T / tau))) for a lag starting at rest (trapezoid integration error ~dt^2).
    s = run(action_from_mapping({"vx": 0.5}), 2.0, dt=0.01)
    expected = 0.5 * (2.0 - 0.25 * (1 - math.exp(-2.0 / 0.25)))
    assert s.x == pytest.approx(expected, abs=2e-4)
    assert s.y == pytest.approx(0.0, abs=1e-12)


def test_turning_in_place_and_heading():
    s = run(action_from_mapping({"wz": 0.5}), 4.0, dt=0.01)
    expected_yaw = 0.5 * (4.0 - 0.25 * (1 - math.exp(-4.0 / 0.25)))
    assert s.yaw == pytest.approx(expected_yaw, abs=1e-3)
    assert math.hypot(s.x, s.y) == pytest.approx(0.0, abs=1e-12)
    # lateral velocity moves the base along +y in the body frame: at yaw 90 deg that is world -x
    s2 = run(action_from_mapping({"vy": 0.4}), 1.0, state=BaseState(yaw=math.pi / 2))
    assert s2.x < -0.1 and abs(s2.y) < 1e-9


def test_commands_are_clipped_to_the_controllers_range():
    s = run(action_from_mapping({"vx": 5.0}), 3.0)  # the contract caps vx at 1.0 m/s
    assert s.vx == pytest.approx(1.0, abs=1e-4)


def test_terminate_stops_the_base():
    moving = run(action_from_mapping({"vx": 1.0}), 2.0)
    stopped = run(action_from_mapping({"vx": 1.0, "terminate": 1.0}), 2.0, state=moving)
    assert abs(stopped.vx) < 1.0 * math.exp(-2.0 / 0.25) + 1e-9


def test_bad_input_raises():
    cmd = action_from_mapping({"vx": 0.3})
    cmd[INDEX["wz"]] = np.nan
    with pytest.raises(InvalidActionError, match="wz"):
        step_base(BaseState(), cmd, 0.02)
    with pytest.raises(ValueError, match="dt"):
        step_base(BaseState(), action_from_mapping({}), 0.0)
    with pytest.raises(ValueError, match="time_constant_s"):
        TrackerConfig(time_constant_s=0.0)
