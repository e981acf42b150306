"""The safety state machine, cycle by cycle: every transition and every damping trigger."""

import math

import numpy as np
import pytest

from go2_bridge.go2 import LYING_POSE, Q_MAX, STAND_POSE, VELOCITY_MAX
from go2_bridge.lowstate import RobotState
from go2_bridge.safety import JointTargetsData, Level, Mode, SafetyConfig, SafetyCore

DT = 0.002  # 500 Hz


def state(q=None, dq=None, quat=(1.0, 0.0, 0.0, 0.0)):
    return RobotState(
        q=np.array(LYING_POSE if q is None else q, dtype=float),
        dq=np.zeros(12) if dq is None else np.asarray(dq, dtype=float),
        tau_est=np.zeros(12),
        quaternion_wxyz=np.array(quat, dtype=float),
        gyroscope=np.zeros(3),
        accelerometer=np.array([0, 0, 9.81]),
        foot_force=np.zeros(4),
        wireless_remote=bytes(40),
    )


def targets(q=None, kp=20.0, kd=0.5):
    return JointTargetsData(
        position=np.array(STAND_POSE if q is None else q, dtype=float),
        velocity=np.zeros(12),
        kp=np.full(12, kp),
        kd=np.full(12, kd),
        torque_ff=np.zeros(12),
    )


class Rig:
    """A SafetyCore fed at 500 Hz with a robot that is wherever the test says."""

    def __init__(self, config=None):
        self.core = SafetyCore(config or SafetyConfig())
        self.now = 0.0
        self.robot = state()
        self.feed_targets = True
        self.target_q = None

    def cycle(self, n=1):
        out = None
        for _ in range(n):
            self.now += DT
            self.core.on_lowstate(self.robot, self.now)
            if self.feed_targets:
                self.core.on_targets(targets(self.target_q), self.now)
            out = self.core.step(self.now)
        return out

    def to_active(self):
        self.cycle(5)
        assert self.core.request("stand_up", self.now)[0]
        self.robot = state(q=STAND_POSE)  # this robot follows its commands instantly
        self.cycle(int(2.0 / DT) + 1)
        assert self.core.request("activate", self.now) == (True, "active")
        self.cycle(1)
        assert self.core.mode is Mode.ACTIVE


def is_damping(cmd, kd=3.0):
    return np.all(cmd.kp == 0) and np.allclose(cmd.kd, kd) and np.all(cmd.tau == 0)


def test_starts_passive_with_zero_torque():
    rig = Rig()
    cmd = rig.cycle()
    assert rig.core.mode is Mode.PASSIVE
    assert np.all(cmd.kp == 0) and np.all(cmd.kd == 0) and np.all(cmd.tau == 0)


def test_stand_up_interpolates_with_cosine_ease_over_two_seconds():
    rig = Rig()
    rig.cycle(3)
    assert rig.core.request("stand_up", rig.now) == (True, "standing up")
    t0 = rig.now
    start = np.clip(LYING_POSE, -10, 10)
    # halfway in time: the cosine ease is exactly half way
    rig.now = t0 + 1.0 - DT
    cmd = rig.cycle()
    np.testing.assert_allclose(cmd.q, start + 0.5 * (STAND_POSE - start), atol=1e-9)
    assert np.allclose(cmd.kp, 50.0) and np.allclose(cmd.kd, 3.0)
    # a quarter in: 0.5 - 0.5 cos(pi/4)
    rig2 = Rig()
    rig2.cycle(3)
    rig2.core.request("stand_up", rig2.now)
    rig2.now = rig2.now + 0.5 - DT
    cmd = rig2.cycle()
    w = 0.5 - 0.5 * math.cos(math.pi / 4)
    np.testing.assert_allclose(cmd.q, start + w * (STAND_POSE - start), atol=1e-9)
    # after the duration it holds the stand pose ...
    rig.now = t0 + 2.5
    rig.robot = state(q=STAND_POSE)
    np.testing.assert_allclose(rig.cycle().q, STAND_POSE, atol=1e-9)
    # ... but a robot stuck lying gets a target only as far as the torque limit allows:
    # calf at -2.7, kp 50, 45.43 Nm -> at most 0.9086 rad away.
    rig.robot = state(q=LYING_POSE)
    cmd = rig.cycle()
    np.testing.assert_allclose(cmd.q[2::3], -2.7 + 45.43 / 50.0, atol=1e-4)
    np.testing.assert_allclose(cmd.q[1::3], STAND_POSE[1::3], atol=1e-9)  # thighs: 0.4 rad, within reach


def test_activate_refused_before_stand_up_done_and_without_targets():
    rig = Rig()
    rig.feed_targets = False
    rig.cycle(2)
    assert not rig.core.request("activate", rig.now)[0]  # not standing
    rig.core.request("stand_up", rig.now)
    rig.cycle(10)
    ok, why = rig.core.request("activate", rig.now)
    assert not ok and "not finished" in why
    rig.cycle(int(2.0 / DT))
    ok, why = rig.core.request("activate", rig.now)
    assert not ok and "no joint targets" in why
    rig.feed_targets = True
    rig.cycle()
    assert rig.core.request("activate", rig.now)[0]


def test_activation_blends_from_stand_command_to_targets():
    rig = Rig()
    rig.target_q = STAND_POSE + 0.2 * np.sign(Q_MAX - STAND_POSE)
    rig.to_active()  # one ACTIVE cycle already ran, 2 ms into the 0.5 s blend
    t_active = rig.core.entered_at
    rig.now = t_active + 0.25 - DT
    cmd = rig.cycle()  # beta = 0.5
    np.testing.assert_allclose(cmd.q, 0.5 * STAND_POSE + 0.5 * rig.target_q, atol=1e-9)
    np.testing.assert_allclose(cmd.kp, 0.5 * 50 + 0.5 * 20)
    np.testing.assert_allclose(cmd.kd, 0.5 * 3 + 0.5 * 0.5)
    rig.now = t_active + 0.6 - DT
    cmd = rig.cycle()
    np.testing.assert_allclose(cmd.q, rig.target_q, atol=1e-9)
    np.testing.assert_allclose(cmd.kp, 20.0)


def test_estop_damps_on_the_next_cycle_from_every_state():
    for setup in ("passive", "stand_up", "active"):
        rig = Rig()
        rig.cycle(2)
        if setup == "stand_up":
            rig.core.request("stand_up", rig.now)
            rig.cycle(10)
        if setup == "active":
            rig.to_active()
        rig.core.set_estop(True, rig.now)
        cmd = rig.cycle()
        assert rig.core.mode is Mode.DAMPING and is_damping(cmd), setup
        assert rig.core.reason == "e-stop"


def test_an_error_while_already_damping_is_still_surfaced():
    rig = Rig()
    rig.to_active()
    rig.core.request("damp", rig.now)
    rig.cycle()
    assert rig.core.mode is Mode.DAMPING and rig.core.level is Level.WARN
    rig.core.fault("malformed JointTargets", rig.now)
    cmd = rig.cycle()
    assert rig.core.mode is Mode.DAMPING and is_damping(cmd)
    assert rig.core.level is Level.ERROR and rig.core.reason == "malformed JointTargets"


def test_estop_pressed_and_released_between_two_cycles_still_damps():
    """A press shorter than one 2 ms cycle (True, then False before the cycle reads it) is not lost."""
    rig = Rig()
    rig.to_active()
    rig.core.set_estop(True, rig.now + 0.0005)
    rig.core.set_estop(False, rig.now + 0.001)
    cmd = rig.cycle()
    assert rig.core.mode is Mode.DAMPING and is_damping(cmd) and rig.core.reason == "e-stop"
    rig.cycle(10)
    assert rig.core.mode is Mode.DAMPING  # latched as ever: only reset leaves it
    rig.cycle(int(1.0 / DT))
    assert rig.core.request("reset", rig.now) == (True, "passive")
    rig.cycle(3)
    assert rig.core.mode is Mode.PASSIVE  # the press was consumed: it does not damp again after the reset


@pytest.mark.parametrize("timeout", [0.1, 0.25])
def test_target_timeout_damps_within_timeout_plus_one_cycle(timeout):
    rig = Rig(SafetyConfig(target_timeout_s=timeout))
    rig.to_active()
    rig.feed_targets = False
    last_target = rig.now
    while rig.core.mode is Mode.ACTIVE:
        rig.cycle()
    assert rig.core.level is Level.ERROR and "targets stale" in rig.core.reason
    delay = rig.now - last_target
    assert timeout < delay <= timeout + DT + 1e-9


def test_stale_lowstate_damps():
    rig = Rig()
    rig.to_active()
    fed = rig.now
    while rig.core.mode is Mode.ACTIVE:
        rig.now += DT
        rig.core.on_targets(targets(), rig.now)  # targets keep coming, the robot went silent
        rig.core.step(rig.now)
    assert "LowState stale" in rig.core.reason
    assert 0.05 < rig.now - fed <= 0.05 + DT + 1e-9


@pytest.mark.parametrize("angle", [0.81, -0.9, 2.5])
@pytest.mark.parametrize("axis", ["roll", "pitch"])
def test_tilt_damps(angle, axis):
    rig = Rig()
    rig.to_active()
    h = angle / 2
    rig.robot = state(
        q=STAND_POSE, quat=(math.cos(h), math.sin(h), 0, 0) if axis == "roll" else (math.cos(h), 0, math.sin(h), 0)
    )
    # a pitch of 2.5 rad reads as a pitch of pi - 2.5 with roll and yaw of pi: still a fall
    cmd = rig.cycle()
    assert rig.core.mode is Mode.DAMPING and is_damping(cmd)
    assert "tilt" in rig.core.reason


def test_tilt_within_limit_keeps_active():
    rig = Rig()
    rig.to_active()
    h = 0.79 / 2
    rig.robot = state(q=STAND_POSE, quat=(math.cos(h), 0, math.sin(h), 0))
    rig.cycle(5)
    assert rig.core.mode is Mode.ACTIVE


def test_joint_position_limit_damps():
    rig = Rig()
    rig.to_active()
    q = STAND_POSE.copy()
    q[5] = -2.7227 - 0.11  # FL calf 0.11 rad past its limit (margin 0.1)
    rig.robot = state(q=q)
    rig.cycle()
    assert rig.core.mode is Mode.DAMPING and "joint 5 position" in rig.core.reason


def test_joint_velocity_limit_damps():
    rig = Rig()
    rig.to_active()
    dq = np.zeros(12)
    dq[8] = VELOCITY_MAX[8] + 0.5
    rig.robot = state(q=STAND_POSE, dq=dq)
    rig.cycle()
    assert rig.core.mode is Mode.DAMPING and "joint 8 speed" in rig.core.reason


@pytest.mark.parametrize("field", ["q", "dq", "quat"])
def test_nan_in_lowstate_damps(field):
    rig = Rig()
    rig.to_active()
    kw = {"q": STAND_POSE.copy()}
    if field == "q":
        kw["q"][0] = np.nan
    elif field == "dq":
        kw["dq"] = np.full(12, np.inf)
    else:
        kw["quat"] = (np.nan, 0, 0, 0)
    rig.robot = state(**kw)
    cmd = rig.cycle()
    assert rig.core.mode is Mode.DAMPING and rig.core.level is Level.ERROR
    assert np.all(np.isfinite(cmd.q))


def test_nan_in_targets_damps():
    rig = Rig()
    rig.to_active()
    bad = STAND_POSE.copy()
    bad[3] = np.nan
    rig.target_q = bad
    rig.cycle()
    assert rig.core.mode is Mode.DAMPING and "non-finite" in rig.core.reason


def test_external_fault_damps_with_error():
    rig = Rig()
    rig.to_active()
    rig.core.fault("exception in callback", rig.now)
    rig.cycle()
    assert rig.core.mode is Mode.DAMPING and rig.core.level is Level.ERROR


def test_damping_is_latched_until_reset_conditions_hold():
    rig = Rig()
    rig.to_active()
    rig.core.set_estop(True, rig.now)
    rig.cycle()
    assert not rig.core.request("stand_up", rig.now)[0]
    assert not rig.core.request("activate", rig.now)[0]
    ok, why = rig.core.request("reset", rig.now)
    assert not ok and "e-stop" in why
    rig.core.set_estop(False, rig.now)
    rig.cycle(10)
    assert rig.core.mode is Mode.DAMPING  # releasing the e-stop does not un-damp
    ok, why = rig.core.request("reset", rig.now)
    assert not ok and "less than" in why
    rig.cycle(int(1.0 / DT))
    assert rig.core.request("reset", rig.now) == (True, "passive")
    assert rig.core.mode is Mode.PASSIVE


def test_stand_up_refused_when_tilted_or_stale():
    rig = Rig()
    rig.robot = state(quat=(math.cos(0.6), math.sin(0.6), 0, 0))  # rolled 1.2 rad: lying on its side
    rig.cycle(2)
    ok, why = rig.core.request("stand_up", rig.now)
    assert not ok and "tilt" in why
    rig2 = Rig()
    ok, why = rig2.core.request("stand_up", rig2.now)
    assert not ok and "no LowState" in why


def test_damp_request_from_any_state_and_unknown_request():
    rig = Rig()
    rig.cycle()
    assert rig.core.request("damp", rig.now) == (True, "damping")
    assert is_damping(rig.cycle())
    assert not rig.core.request("jump", rig.now)[0]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="target_timeout_s"):
        SafetyConfig(target_timeout_s=0.0)
    with pytest.raises(ValueError, match="stand_pose"):
        SafetyConfig(stand_pose=(5.0,) * 12)
    with pytest.raises(ValueError, match="kp_max"):
        SafetyConfig(stand_kp=200.0)
