"""Each LowState through the bridge's input stage (CRC, readings, remote) into the safety core, without ROS;
and the fuzz: 10,000 random remote frames with valid CRCs never leave DAMPING and never stand the robot up."""

import math

import numpy as np
import pytest

from go2_bridge.go2 import STAND_POSE
from go2_bridge.inputs import InputMonitor, LowStateInput, Publishable, check_targets
from go2_bridge.lowstate_wire import LowStateData, lowstate_crc
from go2_bridge.remote import ComboDetector, encode_remote, keys_of
from go2_bridge.safety import JointTargetsData, Level, Mode, SafetyConfig, SafetyCore

DT = 0.002


def lowstate(remote: bytes = bytes(40), q=STAND_POSE, quat=(1.0, 0.0, 0.0, 0.0), gyro=(0.0, 0.0, 0.0),
             accel=(0.0, 0.0, 9.81), tau_est=0.0, good_crc=True) -> LowStateData:  # fmt: skip
    d = LowStateData()
    d.head = [0xFE, 0xEF]
    for i in range(12):
        m = d.motor_state[i]
        m.q, m.tau_est = float(q[i]), float(tau_est)
    d.imu_state.quaternion = list(quat)
    d.imu_state.gyroscope = list(gyro)
    d.imu_state.accelerometer = list(accel)
    d.wireless_remote = list(remote)
    d.crc = lowstate_crc(d) ^ (0 if good_crc else 0x10)
    return d


def targets():
    return JointTargetsData(STAND_POSE.copy(), np.zeros(12), np.full(12, 20.0), np.full(12, 0.5), np.zeros(12))


class Rig:
    """LowStateInput + SafetyCore stepped at 500 Hz, one LowState per cycle (the node's order)."""

    def __init__(self, config=None, **combo_kwargs):
        self.core = SafetyCore(config or SafetyConfig(stand_up_duration_s=0.1, min_damping_s=0.0))
        self.monitor = InputMonitor()
        self.inputs = LowStateInput(self.core, self.monitor, ComboDetector(**combo_kwargs), max_bad_crc_frames=10)
        self.now = 0.0
        self.modes = []

    def feed(self, msg, with_targets=False):
        self.now += DT
        out = self.inputs.on_message(msg, self.now)
        if with_targets:
            self.core.on_targets(targets(), self.now)
        self.core.step(self.now)
        self.modes.append(self.core.mode)
        return out

    def to_active(self):
        self.feed(lowstate())
        assert self.core.request("stand_up", self.now)[0]
        for _ in range(60):
            self.feed(lowstate(), with_targets=True)
        assert self.core.request("activate", self.now)[0]
        self.feed(lowstate(), with_targets=True)
        assert self.core.mode is Mode.ACTIVE

    def to_damping(self):
        self.feed(lowstate())
        self.core.request("damp", self.now)
        self.feed(lowstate())
        assert self.core.mode is Mode.DAMPING


def test_valid_frame_is_accepted_and_fully_publishable():
    rig = Rig()
    state, ok = rig.feed(lowstate())
    assert ok == Publishable(joint_state=True, imu=True, accelerometer=True)
    assert rig.inputs.accepted == 1 and rig.core.robot_state is state and not rig.monitor.faults


def test_bad_crc_is_dropped_counted_and_reported():
    rig = Rig()
    first, _ = rig.feed(lowstate())
    assert rig.feed(lowstate(q=STAND_POSE + 0.1, good_crc=False)) is None
    assert rig.core.robot_state is first  # the core never saw it
    assert rig.inputs.crc_errors == 1 and rig.monitor.counts() == {"lowstate_crc": 1}
    assert rig.monitor.news and rig.monitor.news[0][0] == "lowstate_crc"
    assert "expected 0x" in rig.monitor.summary(rig.now)


def test_a_run_of_bad_crcs_is_sensor_loss_and_damps_on_the_next_cycle():
    rig = Rig()
    rig.to_active()
    for _ in range(9):  # 9 in a row, then a good one: counted, nothing else
        rig.feed(lowstate(good_crc=False), with_targets=True)
    rig.feed(lowstate(), with_targets=True)
    assert rig.core.mode is Mode.ACTIVE and rig.inputs.crc_errors == 9
    for i in range(10):
        rig.feed(lowstate(good_crc=False), with_targets=True)
        assert rig.core.mode is (Mode.DAMPING if i == 9 else Mode.ACTIVE)  # the cycle of the 10th
    assert rig.core.reason == "LowState lost: 10 LowState frames in a row with a bad CRC"
    assert rig.core.level is Level.ERROR
    ok, why = rig.core.request("reset", rig.now)
    assert not ok and "LowState lost" in why  # not while the frames are bad
    rig.feed(lowstate())  # one valid frame: LowState is fresh again
    assert rig.core.request("reset", rig.now) == (True, "passive")


def test_bad_crcs_keep_a_passive_robot_from_standing_up():
    rig = Rig()
    rig.feed(lowstate())
    for _ in range(10):
        rig.feed(lowstate(good_crc=False))
    ok, why = rig.core.request("stand_up", rig.now)
    assert not ok and "bad CRC" in why


@pytest.mark.parametrize(
    ("field", "kwargs", "publishable", "damps"),
    [
        ("accelerometer", {"accel": (math.nan, 0.0, 9.8)}, Publishable(True, True, False), False),
        ("tau_est", {"tau_est": math.inf}, Publishable(False, True, True), False),
        ("gyroscope", {"gyro": (0.0, math.nan, 0.0)}, Publishable(True, False, True), True),
        ("quaternion_wxyz", {"quat": (math.nan, 0.0, 0.0, 1.0)}, Publishable(True, False, True), True),
        ("q", {"q": np.where(np.arange(12) == 4, math.nan, STAND_POSE)}, Publishable(False, True, True), True),
    ],
)
def test_non_finite_readings_are_never_published_and_damp_where_control_needs_them(field, kwargs, publishable, damps):
    rig = Rig()
    rig.to_active()
    _, ok = rig.feed(lowstate(**kwargs), with_targets=True)
    assert ok == publishable
    assert f"non-finite {field}" in rig.monitor.faults["lowstate_values"].detail
    assert (rig.core.mode is Mode.DAMPING) == damps, rig.core.reason
    if damps:
        assert rig.core.level is Level.ERROR


def test_degenerate_quaternion_is_not_published():
    rig = Rig()
    _, ok = rig.feed(lowstate(quat=(0.0, 0.0, 0.0, 0.0)))
    assert not ok.imu and "degenerate quaternion" in rig.monitor.faults["lowstate_values"].detail


@pytest.mark.parametrize("rate", [-36.0, 1e3, 3e38])
def test_a_gyro_past_its_range_is_held_back_and_reported_without_damping(rate):
    """A glitched gyro frame must not reach the controller's policy and yaw trim; one frame is not worth a fall."""
    rig = Rig()
    rig.to_active()
    _, ok = rig.feed(lowstate(gyro=(0.0, 0.0, rate)), with_targets=True)
    assert ok == Publishable(joint_state=True, imu=False, accelerometer=True)
    assert "gyroscope past 35 rad/s" in rig.monitor.faults["lowstate_values"].detail
    assert rig.core.mode is Mode.ACTIVE
    _, ok = rig.feed(lowstate(gyro=(34.0, -34.0, 0.0)), with_targets=True)  # fast, but within range
    assert ok.imu


def test_implausible_remote_is_reported():
    rig = Rig()
    rig.feed(lowstate(remote=encode_remote(lx=float("nan"))))
    assert "remote_implausible" in rig.monitor.faults


def test_deliberate_combos_still_work():
    """The positive control of the fuzz below: the same pipeline does obey a held combo."""
    rig = Rig()
    stand = encode_remote(keys_of("L2", "A"))
    for _ in range(49):
        rig.feed(lowstate(stand))
    assert rig.core.mode is Mode.PASSIVE
    rig.feed(lowstate(stand))  # 50th frame: 100 ms at 500 Hz
    assert rig.core.mode is Mode.STAND_UP
    rig.to_damping()
    reset = encode_remote(keys_of("L2", "X"))
    for _ in range(499):
        rig.feed(lowstate(reset))
    assert rig.core.mode is Mode.DAMPING
    rig.feed(lowstate(reset))  # 500th frame: 1 s
    assert rig.core.mode is Mode.PASSIVE


def random_remote_frames(rng: np.random.Generator, n: int):
    """n frames of random remote bytes: the first half fresh every frame, the second half random packets
    each repeated over 1-20 frames (a radio packet stays in LowState until the next one arrives)."""
    frames = [rng.integers(0, 256, 40, dtype=np.uint8).tobytes() for _ in range(n // 2)]
    while len(frames) < n:
        packet = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
        frames += [packet] * int(rng.integers(1, 21))
    return frames[:n]


@pytest.mark.parametrize("start", ["DAMPING", "PASSIVE"])
def test_fuzz_10000_random_remote_frames(start):
    rig = Rig()
    if start == "DAMPING":
        rig.to_damping()
    rig.modes.clear()
    # Everything but the remote says: healthy, level, fresh, e-stop off, min_damping_s 0 (the deliberate
    # combo at the end proves it). Only the combo logic stands between these frames and a stand-up or reset.
    msg = lowstate()
    rng = np.random.default_rng(20261130 + len(start))
    for remote in random_remote_frames(rng, 10_000):
        msg.wireless_remote = list(remote)
        msg.crc = lowstate_crc(msg)
        rig.feed(msg)
    assert rig.inputs.accepted >= 10_000 and rig.inputs.crc_errors == 0  # all reached the combo logic
    pairs = zip(rig.modes, rig.modes[1:], strict=False)
    assert not any(a is Mode.DAMPING and b is not Mode.DAMPING for a, b in pairs)
    assert Mode.STAND_UP not in rig.modes and Mode.ACTIVE not in rig.modes
    if start == "DAMPING":
        assert set(rig.modes) == {Mode.DAMPING}
    # The frames did exercise the detector: a valid-looking remote frame is 1 in ~16 (sticks within [-1, 1]).
    assert 0 < rig.inputs.combos.rejected < 10_000
    # Positive control, same rig: the deliberate combo is obeyed.
    if rig.core.mode is Mode.DAMPING:
        for _ in range(500):
            rig.feed(lowstate(encode_remote(keys_of("L2", "X"))))
        assert rig.core.mode is Mode.PASSIVE
    for _ in range(50):
        rig.feed(lowstate(encode_remote(keys_of("L2", "A"))))
    assert rig.core.mode is Mode.STAND_UP


def test_check_targets_names_each_problem():
    assert check_targets(targets(), 100.0, 10.0) == []
    t = targets()
    t.velocity = np.zeros(11)
    assert check_targets(t, 100.0, 10.0) == ["velocity has 11 values, not 12"]
    t = targets()
    t.kd[3] = math.nan
    assert check_targets(t, 100.0, 10.0) == ["kd[3] is not finite"]
    t = targets()
    t.position[0], t.velocity[1], t.kp[2], t.torque_ff[5] = 1e30, -31.0, -1.0, 46.0
    assert check_targets(t, 100.0, 10.0) == [
        "position far outside the joint range",
        "velocity over the joint speed limit",
        "negative gain",
        "torque_ff over the torque limit",
    ]
    t = targets()
    t.kp[:] = 150.0
    assert check_targets(t, 100.0, 10.0) == ["gain over kp_max 100.0 / kd_max 10.0"]
    t = targets()
    t.position = STAND_POSE + 2.5  # what walk-these-ways can ask for: not reported
    assert check_targets(t, 100.0, 10.0) == []


def test_monitor_warns_for_hold_s_then_goes_quiet():
    m = InputMonitor(hold_s=2.0)
    m.report("lowstate_crc", "x", 10.0)
    m.report("lowstate_crc", "y", 10.5)
    assert m.news == [("lowstate_crc", "x")]  # news once per start, not per frame
    assert m.summary(12.4) == "lowstate_crc x2: y"
    assert m.summary(12.6) == "" and m.counts() == {"lowstate_crc": 2}
    m.report("lowstate_crc", "z", 13.0)
    assert m.news[-1] == ("lowstate_crc", "z")


@pytest.mark.ros
def test_imu_without_accelerometer_says_no_estimate():
    from builtin_interfaces.msg import Time

    from go2_bridge.convert import imu_msg
    from go2_bridge.lowstate import parse_lowstate

    state = parse_lowstate(lowstate(quat=(2.0, 0.0, 0.0, 0.0), accel=(math.nan, 1.0, 2.0)))
    msg = imu_msg(state, Time(), "base_link", accelerometer_ok=False)
    a = msg.linear_acceleration
    assert (a.x, a.y, a.z) == (0.0, 0.0, 0.0) and msg.linear_acceleration_covariance[0] == -1.0
    assert msg.orientation.w == 1.0  # normalised
