"""Observation pieces against hand-derived values: gravity, clock, history."""

import math

import numpy as np
import pytest

from wtw_controller.observation import GaitClock, ObservationHistory, gravity_from_quaternion, gravity_from_rpy


def quat_xyzw_from_rpy(r, p, y):
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2),
                              math.cos(y / 2), math.sin(y / 2))  # fmt: skip
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


@pytest.mark.parametrize("rpy", [(0, 0, 0), (0.1, -0.2, 0.3), (-0.7, 0.4, -2.0), (0.0, math.pi / 2 - 0.01, 1.0)])
def test_gravity_closed_form(rpy):
    r, p, _ = rpy
    # R^T (0,0,-1) = -(third row of Rz Ry Rx) = (sin p, -cos p sin r, -cos p cos r), independent of yaw
    expected = np.array([math.sin(p), -math.cos(p) * math.sin(r), -math.cos(p) * math.cos(r)])
    np.testing.assert_allclose(gravity_from_rpy(*rpy), expected, atol=1e-12)
    np.testing.assert_allclose(gravity_from_quaternion(*quat_xyzw_from_rpy(*rpy)), expected, atol=1e-12)


def test_degenerate_quaternion_raises():
    with pytest.raises(ValueError):
        gravity_from_quaternion(0, 0, 0, 0)


def test_clock_trot_by_hand():
    clock = GaitClock()
    assert np.all(clock.clock == 0)  # the first observation after a reset sees zeros
    clock.advance(0.02, 3.0, 0.5, 0.0, 0.0)  # g = 0.06
    np.testing.assert_allclose(clock.foot_phases, [0.56, 0.06, 0.06, 0.56])
    np.testing.assert_allclose(clock.clock, np.sin(2 * np.pi * np.array([0.56, 0.06, 0.06, 0.56])))
    for _ in range(16):
        clock.advance(0.02, 3.0, 0.5, 0.0, 0.0)  # 17 * 0.06 = 1.02 -> wraps to 0.02
    assert clock.gait_index == pytest.approx(0.02)


def test_clock_bound_and_pace_phases():
    c = GaitClock()
    c.advance(0.02, 2.0, 0.0, 0.5, 0.0)  # bound: g = 0.04
    np.testing.assert_allclose(c.foot_phases, [0.54, 0.54, 0.04, 0.04])
    c = GaitClock()
    c.advance(0.02, 2.0, 0.0, 0.0, 0.5)  # pace
    np.testing.assert_allclose(c.foot_phases, [0.54, 0.04, 0.54, 0.04])


def test_history_shifts_oldest_out():
    h = ObservationHistory(3, 2)
    h.push(np.array([1.0, 2.0]))
    h.push(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(h.buffer, [0, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(h.push(np.array([5.0, 6.0])), [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(h.push(np.array([7.0, 8.0])), [3, 4, 5, 6, 7, 8])
    h.reset()
    assert not h.buffer.any()
