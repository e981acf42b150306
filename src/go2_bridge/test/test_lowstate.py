"""LowState parsing: quaternion order, Euler angles, contacts, NaN handling."""

import math

import numpy as np

from go2_bridge.lowstate import foot_contacts, rpy_from_quaternion


def _quat_from_rpy(r, p, y):
    cr, sr = math.cos(r / 2), math.sin(r / 2)
    cp, sp = math.cos(p / 2), math.sin(p / 2)
    cy, sy = math.cos(y / 2), math.sin(y / 2)
    return np.array(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ]
    )


def test_pure_rotations():
    s = math.sin(0.15)
    c = math.cos(0.15)
    assert np.allclose(rpy_from_quaternion(np.array([c, s, 0, 0])), (0.3, 0, 0))
    assert np.allclose(rpy_from_quaternion(np.array([c, 0, s, 0])), (0, 0.3, 0))
    assert np.allclose(rpy_from_quaternion(np.array([c, 0, 0, s])), (0, 0, 0.3))


def test_round_trip_and_unnormalised():
    for rpy in [(0.1, -0.4, 2.0), (-1.0, 0.7, -3.0)]:
        assert np.allclose(rpy_from_quaternion(3.0 * _quat_from_rpy(*rpy)), rpy)


def test_degenerate_quaternion_is_nan():
    assert all(math.isnan(v) for v in rpy_from_quaternion(np.zeros(4)))
    assert all(math.isnan(v) for v in rpy_from_quaternion(np.array([np.nan, 0, 0, 1])))


def test_contacts_threshold_and_nan():
    assert foot_contacts(np.array([0.0, 25.0, np.nan, 100.0]), 20.0).tolist() == [0.0, 1.0, 0.0, 1.0]
