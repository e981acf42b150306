"""The controller core end to end (no ROS): a hand-computed observation, the policy's action on it,
the resulting targets, and the watchdogs."""

import math

import numpy as np
import pytest
from wtw_helpers import make_run, reference_action

from more_common.action_contract import action_from_mapping
from wtw_controller.core import WtwController
from wtw_controller.policy import WtwPolicy

# A known state. Joint values in SDK order FR, FL, RR, RL (hip, thigh, calf).
Q_SDK = np.array([-0.2, 0.9, -1.6, 0.15, 0.7, -1.4, -0.05, 1.1, -1.7, 0.12, 0.95, -1.45])
DQ_SDK = np.array([1.0, -2.0, 3.0, 0.5, 0.0, -1.0, 2.0, 2.0, -4.0, 0.0, 1.0, 6.0])
RPY = (0.1, -0.2, 0.3)
COMMAND = {
    "vx": 0.5, "vy": 0.3, "wz": -0.5, "gait_phase": 0.48, "gait_offset": 0.02, "gait_bound": 0.97,
    "step_frequency": 3.0, "body_height": 0.05, "pitch": 0.1, "stance_width": 0.3, "footswing_height": 0.1,
}  # fmt: skip


def quat_xyzw(r, p, y):
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2),
                              math.cos(y / 2), math.sin(y / 2))  # fmt: skip
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy])  # fmt: skip


def hand_observation(last_action, last_last_action, clock):
    r, p, _ = RPY
    gravity = [math.sin(p), -math.cos(p) * math.sin(r), -math.cos(p) * math.cos(r)]
    # gait (0.48, 0.02, 0.97) snaps to trot (0.5, 0, 0); scales 2, 2, .25, 2, 1, 1, 1, 1, 1, .15, .3, .3, 1, 1, 1
    commands = [0.5 * 2, 0.3 * 2, -0.5 * 0.25, 0.05 * 2, 3.0, 0.5, 0.0, 0.0, 0.5, 0.1 * 0.15, 0.1 * 0.3, 0.0,
                0.3, 0.40, 0.0]  # fmt: skip
    # policy order FL, FR, RL, RR; default (.1,.8,-1.5), (-.1,.8,-1.5), (.1,1,-1.5), (-.1,1,-1.5)
    q_minus_default = [0.15 - 0.1, 0.7 - 0.8, -1.4 + 1.5,  # FL
                       -0.2 + 0.1, 0.9 - 0.8, -1.6 + 1.5,  # FR
                       0.12 - 0.1, 0.95 - 1.0, -1.45 + 1.5,  # RL
                       -0.05 + 0.1, 1.1 - 1.0, -1.7 + 1.5]  # RR  # fmt: skip
    dq = [0.5, 0.0, -1.0, 1.0, -2.0, 3.0, 0.0, 1.0, 6.0, 2.0, 2.0, -4.0]
    return np.array([*gravity, *commands, *q_minus_default, *(0.05 * np.array(dq)), *last_action,
                     *last_last_action, *clock])  # fmt: skip


@pytest.fixture
def run(tmp_path):
    return tmp_path, make_run(tmp_path, seed=7, scale=0.02)


def fed(controller, now):
    controller.on_joint_state(Q_SDK, DQ_SDK, now)
    controller.on_imu(quat_xyzw(*RPY), now)


def test_observation_action_and_targets_equal_hand_computation(run):
    path, weights = run
    ctl = WtwController(WtwPolicy(path))
    fed(ctl, 0.0)
    ctl.on_command(action_from_mapping(COMMAND), 0.0)
    r1 = ctl.step(0.0)
    assert r1.status == "ok"
    obs1 = hand_observation(np.zeros(12), np.zeros(12), np.zeros(4))
    np.testing.assert_allclose(r1.observation, obs1, atol=1e-12)
    hist1 = np.concatenate([np.zeros(29 * 70), obs1])
    a1 = np.clip(reference_action(hist1, *weights), -10, 10)
    np.testing.assert_allclose(r1.action, a1, rtol=1e-4, atol=1e-4)
    # targets: x0.25, hips x0.5, + default, to SDK order (action in policy order FL FR RL RR)
    scaled = a1 * 0.25
    scaled[[0, 3, 6, 9]] *= 0.5
    default = np.array([0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5])
    pol = scaled + default
    expected_targets = np.concatenate([pol[3:6], pol[0:3], pol[9:12], pol[6:9]])
    np.testing.assert_allclose(r1.targets, expected_targets, atol=1e-4)

    # second step: last action = a1, clock advanced once (trot, 3 Hz, dt 0.02 -> g = 0.06)
    fed(ctl, 0.02)
    r2 = ctl.step(0.02)
    clock = np.sin(2 * np.pi * np.array([0.56, 0.06, 0.06, 0.56]))
    obs2 = hand_observation(r1.action, np.zeros(12), clock)
    np.testing.assert_allclose(r2.observation, obs2, atol=1e-12)
    np.testing.assert_allclose(ctl.history.buffer[-140:], np.concatenate([obs1, obs2]), atol=1e-12)
    a2 = reference_action(np.concatenate([np.zeros(28 * 70), obs1, obs2]), *weights)
    np.testing.assert_allclose(r2.action, np.clip(a2, -10, 10), rtol=1e-4, atol=1e-4)
    # third step sees both previous actions
    fed(ctl, 0.04)
    r3 = ctl.step(0.04)
    np.testing.assert_allclose(r3.observation[42:54], r2.action)
    np.testing.assert_allclose(r3.observation[54:66], r1.action)


def test_command_timeout_means_zero_velocity_in_place(run):
    path, _ = run
    ctl = WtwController(WtwPolicy(path), command_timeout_s=0.5)
    fed(ctl, 0.0)
    ctl.on_command(action_from_mapping({"vx": 0.8}), 0.0)
    assert ctl.step(0.0).commands[0] == 0.8
    fed(ctl, 0.5)
    assert ctl.step(0.5).commands[0] == 0.8  # exactly at the timeout: still fresh
    fed(ctl, 0.52)
    r = ctl.step(0.52)
    assert r.targets is not None and r.status == "command timeout: standing"
    assert r.commands[:3].tolist() == [0.0, 0.0, 0.0]


def test_missing_or_stale_sensors_stop_targets_and_reset(run):
    path, _ = run
    ctl = WtwController(WtwPolicy(path), sensor_timeout_s=0.1)
    assert ctl.step(0.0).targets is None  # nothing yet
    ctl.on_joint_state(Q_SDK, DQ_SDK, 0.0)
    r = ctl.step(0.0)
    assert r.targets is None and "IMU" in r.status
    fed(ctl, 0.0)
    assert ctl.step(0.02).targets is not None and ctl.history.buffer.any()
    ctl.on_imu(quat_xyzw(*RPY), 0.2)  # joint states stop at t = 0
    r = ctl.step(0.2)
    assert r.targets is None and "joint states" in r.status
    assert not ctl.history.buffer.any() and not ctl.action.any() and ctl.clock.gait_index == 0.0


def test_non_finite_sensor_values_stop_targets(run):
    path, _ = run
    ctl = WtwController(WtwPolicy(path))
    bad = Q_SDK.copy()
    bad[4] = np.nan
    ctl.on_joint_state(bad, DQ_SDK, 0.0)
    ctl.on_imu(quat_xyzw(*RPY), 0.0)
    assert ctl.step(0.0).targets is None
    ctl.on_joint_state(Q_SDK, DQ_SDK, 0.0)
    ctl.on_imu(np.zeros(4), 0.0)  # degenerate quaternion
    assert ctl.step(0.0).targets is None


def test_sensor_timeout_boundary():
    """Joint states and IMU exactly sensor_timeout_s old still count; a millisecond later neither does."""
    from wtw_controller.core import Controller
    from wtw_controller.velocity import VelocityBackend

    ctl = Controller(VelocityBackend(lambda obs: np.zeros(12)), sensor_timeout_s=0.1)
    ctl.on_joint_state(Q_SDK, DQ_SDK, 0.0)
    ctl.on_imu(quat_xyzw(*RPY), 0.05)
    assert ctl.step(0.1).targets is not None  # joint states exactly 0.1 s old
    r = ctl.step(0.101)
    assert r.targets is None and r.status == "joint states missing or stale"
    ctl.on_joint_state(Q_SDK, DQ_SDK, 0.101)
    assert ctl.step(0.15).targets is not None  # IMU exactly 0.1 s old
    r = ctl.step(0.151)
    assert r.targets is None and r.status == "IMU missing, stale or degenerate"


@pytest.mark.parametrize("field", ["q", "dq", "gyro"])
def test_each_non_finite_reading_alone_stops_targets_before_the_policy(field):
    """A policy that ignores its input would turn NaN readings into plausible targets: the core must stop first."""
    from wtw_controller.core import Controller
    from wtw_controller.velocity import VelocityBackend

    calls = []
    ctl = Controller(VelocityBackend(lambda obs: calls.append(obs) or np.full(12, 0.1)))
    q, dq, gyro = Q_SDK.copy(), DQ_SDK.copy(), np.array([0.0, 0.0, 0.2])
    ctl.on_command(action_from_mapping({"vx": 0.5}), 0.0)
    ctl.on_joint_state(q, dq, 0.0)
    ctl.on_imu(quat_xyzw(*RPY), 0.0, gyro)
    assert ctl.step(0.0).status == "ok" and ctl.backend.last_action.any() and ctl.backend.trim != 0.0
    {"q": q, "dq": dq, "gyro": gyro}[field][1] = np.nan
    ctl.on_joint_state(q, dq, 0.02)
    ctl.on_imu(quat_xyzw(*RPY), 0.02, gyro)
    r = ctl.step(0.02)
    assert r.targets is None and r.status == "non-finite sensor values"
    assert len(calls) == 1  # the policy never saw the NaN
    assert not ctl.backend.last_action.any() and ctl.backend.trim == 0.0  # reset


def test_policy_nan_stops_targets():
    ctl = WtwController(lambda h: np.full(12, np.nan))
    fed(ctl, 0.0)
    r = ctl.step(0.0)
    assert r.targets is None and "non-finite" in r.status
