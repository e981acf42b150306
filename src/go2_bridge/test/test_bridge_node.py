"""The bridge as a real process against a fake robot played by the test (LowState out, LowCmd in).

Timing bounds here include scheduling on a busy 2-core machine; the cycle-exact bounds are proven in
test_safety.py. The fake robot publishes LowState at ~100 Hz from the test process, which a busy machine
can starve for a while, so the rig runs with lowstate_timeout_s 1 s (staleness of LowState is tested
cycle by cycle in test_safety.py)."""

import math
import signal
import time

import numpy as np
import pytest

from go2_bridge.go2 import JOINT_NAMES, Q_MAX, Q_MIN, STAND_POSE, TORQUE_MAX
from go2_bridge.lowcmd import lowcmd_crc
from go2_bridge.lowstate_wire import lowstate_crc
from go2_bridge.remote import encode_remote, keys_of
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros

# Longer than the robot's 0.1 s: the targets come from this test process, which a busy machine can starve
# for ~0.1 s; the timeout is measured against this value all the same.
TARGET_TIMEOUT = 0.5
PARAMS = {
    "stand_up_duration_s": 0.2,
    "activate_blend_s": 0.05,
    "min_damping_s": 0.1,
    "lowstate_timeout_s": 1.0,
    "target_timeout_s": TARGET_TIMEOUT,
    "state_publish_divider": 1,
    # The fake robot sends LowState at ~100 Hz, not 500: the remote holds in frames are the defaults' times
    # (100 ms, 20 ms, 1 s) at that rate.
    "remote_hold_frames": 10,
    "remote_damp_hold_frames": 2,
    "remote_reset_hold_frames": 100,
}


class FakeRobot:
    def __init__(self, probe):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Imu, JointState
        from std_msgs.msg import Bool, String

        from more_msgs.msg import JointTargets
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
        from unitree_go.msg import LowCmd, LowState

        self.probe = probe
        node = probe.node
        self.lowstate_pub = node.create_publisher(LowState, names.LOWSTATE, SENSOR_QOS)
        self.targets_pub = node.create_publisher(JointTargets, names.JOINT_TARGETS, COMMAND_QOS)
        self.estop_pub = node.create_publisher(Bool, names.ESTOP, COMMAND_QOS)
        self.lowcmds = probe.listen(LowCmd, names.LOWCMD, SENSOR_QOS, stamp=True)
        self.states = probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
        self.diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        self.joint_states = probe.listen(JointState, names.JOINT_STATES, SENSOR_QOS)
        self.imus = probe.listen(Imu, names.IMU, SENSOR_QOS)
        self.LowState, self.JointTargets, self.Bool = LowState, JointTargets, Bool
        self.q = STAND_POSE.copy()
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.keys = 0
        self.remote = None  # raw remote bytes instead of `keys`
        self.accel = np.array([0.0, 0.0, 9.81])
        self.bad_crc = False
        self.sent = 0
        self.feed_targets = False
        self.target_age_s = None  # None: targets unstamped (not counted); else stamped this long before sending
        self.last_target_time = None
        self._n = 0

    def act(self):
        msg = self.LowState()
        for i in range(12):
            msg.motor_state[i].q = float(self.q[i])
        msg.imu_state.quaternion = self.quat.astype(np.float32)
        msg.imu_state.accelerometer = self.accel.astype(np.float32)
        remote = encode_remote(self.keys) if self.remote is None else self.remote
        msg.wireless_remote = np.frombuffer(remote, dtype=np.uint8).copy()
        msg.crc = lowstate_crc(msg) ^ (1 if self.bad_crc else 0)
        self.lowstate_pub.publish(msg)
        self.sent += 1
        self._n += 1
        if self.feed_targets and self._n % 2 == 0:
            t = self.JointTargets()
            if self.target_age_s is not None:
                from rclpy.duration import Duration

                t.header.stamp = (self.probe.node.get_clock().now() - Duration(seconds=self.target_age_s)).to_msg()
            t.position = STAND_POSE.tolist()
            t.kp = [20.0] * 12
            t.kd = [0.5] * 12
            self.targets_pub.publish(t)
            self.last_target_time = time.monotonic()

    @property
    def state(self):
        return self.states[-1].data if self.states else ""

    def spin_until(self, predicate, timeout=10.0):
        return self.probe.spin_until(predicate, timeout, self.act, every=0.01)

    def request(self, what):
        from std_srvs.srv import Trigger

        service = {"stand_up": names.BRIDGE_STAND_UP, "activate": names.BRIDGE_ACTIVATE,
                   "damp": names.BRIDGE_DAMP, "reset": names.BRIDGE_RESET}[what]  # fmt: skip
        return self.probe.call(Trigger, service, action=self.act)

    def estop(self, on):
        self.estop_pub.publish(self.Bool(data=on))

    def to_passive(self):
        self.q, self.quat, self.keys = STAND_POSE.copy(), np.array([1.0, 0, 0, 0]), 0
        self.remote, self.bad_crc, self.accel = None, False, np.array([0.0, 0.0, 9.81])
        self.estop(False)
        self.feed_targets, self.target_age_s = False, None
        if not self.state.startswith("PASSIVE"):
            self.request("damp")
            assert self.spin_until(lambda: self.state.startswith("DAMPING"))
            self.probe.spin_for(0.15, self.act)
            assert self.request("reset").success
        assert self.spin_until(lambda: self.state.startswith("PASSIVE"))

    def to_active(self):
        self.to_passive()
        assert self.request("stand_up").success
        self.feed_targets = True
        for _ in range(3):  # a starved feeder (a loaded CI machine) gets "targets stale": the bridge is right
            self.probe.spin_for(0.3, self.act)
            response = self.request("activate")
            if response.success or "targets stale" not in response.message:
                break
        assert response.success, response.message
        assert self.spin_until(lambda: self.state.startswith("ACTIVE"))


def is_damping(msg):
    return all(m.kp == 0.0 and m.kd == pytest.approx(3.0) for m in msg.motor_cmd[:12])


@pytest.fixture(scope="module")
def robot():
    bridge = NodeProcess("go2_bridge.bridge_node", PARAMS)
    probe = Probe("fake_go2")
    fake = FakeRobot(probe)
    fake.process = bridge
    try:
        assert fake.spin_until(lambda: fake.lowcmds and fake.state, timeout=30), bridge.output()
        yield fake
    finally:
        probe.close()
        rc = bridge.stop()
        out = bridge.output()
        assert rc == 0, out
        assert "Traceback" not in out, out


def test_lowcmd_on_the_wire_is_checksummed_and_within_limits(robot):
    robot.to_active()
    robot.lowcmds.clear()
    assert robot.spin_until(lambda: len(robot.lowcmds) > 50)
    for _, msg in robot.lowcmds:
        assert tuple(msg.head) == (0xFE, 0xEF) and msg.level_flag == 0xFF
        assert msg.crc == lowcmd_crc(msg)
        q = np.array([m.q for m in msg.motor_cmd[:12]])
        assert np.all(q >= Q_MIN) and np.all(q <= Q_MAX)
        assert all(abs(m.tau) <= t for m, t in zip(msg.motor_cmd[:12], TORQUE_MAX, strict=True))
        assert all(m.mode == 0 and m.kp == 0 and m.kd == 0 for m in msg.motor_cmd[12:])
    np.testing.assert_allclose([m.kp for m in robot.lowcmds[-1][1].motor_cmd[:12]], 20.0)


def test_how_late_the_targets_reach_the_robot_is_reported(robot):
    """Targets stamped 30 ms before they are sent: the first LowCmd after each is at least that late."""
    robot.to_active()
    robot.target_age_s = 0.03
    robot.diags.clear()
    # every age counted is a stamped one (unstamped targets never are), so the first report already says it
    assert robot.spin_until(lambda: robot.diags and _diag_value(robot.diags[-1], "targets_age_p50_ms") is not None)
    p50, p99, worst = (float(_diag_value(robot.diags[-1], f"targets_age_{k}_ms")) for k in ("p50", "p99", "max"))
    assert 30.0 <= p50 <= p99 <= worst < 300.0, (p50, p99, worst)
    robot.lowcmds.clear()  # ~500 a second pile up in this process and slow the timing tests after it


def test_joint_state_and_imu_follow_lowstate(robot):
    robot.to_passive()
    robot.q = STAND_POSE + np.arange(12) * 0.01
    h = 0.2
    robot.quat = np.array([math.cos(h), 0.0, math.sin(h), 0.0])  # w, x, y, z: pitched 0.4 rad
    robot.joint_states.clear()
    robot.imus.clear()
    assert robot.spin_until(
        lambda: (
            robot.joint_states
            and robot.imus
            and robot.joint_states[-1].position[1] > 0.805
            and robot.imus[-1].orientation.y > 0.1
        )
    )
    js = robot.joint_states[-1]
    assert tuple(js.name) == JOINT_NAMES
    np.testing.assert_allclose(js.position, robot.q, atol=1e-6)
    o = robot.imus[-1].orientation
    np.testing.assert_allclose([o.x, o.y, o.z, o.w], [0.0, math.sin(h), 0.0, math.cos(h)], atol=1e-6)


def test_estop_damps_on_the_next_cycle(robot):
    robot.to_active()
    robot.lowcmds.clear()
    t_estop = time.monotonic()
    robot.estop(True)
    assert robot.spin_until(lambda: any(is_damping(m) for _, m in robot.lowcmds), timeout=2.0)
    after = [m for t, m in robot.lowcmds if t >= t_estop]
    first = next(i for i, m in enumerate(after) if is_damping(m))
    # Only LowCmds in flight or sent while the e-stop was on its way may be non-damping: a few 2 ms cycles
    # (the next-cycle guarantee itself is tested cycle by cycle in test_safety.py).
    assert first <= 5, f"{first} non-damping LowCmds after the e-stop"
    robot.probe.spin_for(0.1, robot.act)
    since_estop = [m for t, m in robot.lowcmds if t >= t_estop]
    assert len(since_estop) > first + 20 and all(is_damping(m) for m in since_estop[first:])
    assert robot.state == "DAMPING: e-stop"
    # reset is refused while the e-stop is held; releasing it does not un-damp; then reset is accepted
    from std_srvs.srv import Trigger

    robot.probe.spin_for(0.2, robot.act)
    response = robot.probe.call(Trigger, names.BRIDGE_RESET, action=robot.act)
    assert not response.success and "e-stop" in response.message
    robot.estop(False)
    released = time.monotonic()
    robot.probe.spin_for(0.3, robot.act)
    assert robot.state.startswith("DAMPING")
    assert all(is_damping(m) for t, m in robot.lowcmds if t >= released)
    assert robot.probe.call(Trigger, names.BRIDGE_RESET, action=robot.act).success
    assert robot.spin_until(lambda: robot.state.startswith("PASSIVE"))


def test_target_timeout_damps_within_bound(robot):
    robot.to_active()
    robot.lowcmds.clear()
    robot.feed_targets = False
    t_last = robot.last_target_time
    assert robot.spin_until(lambda: any(is_damping(m) for _, m in robot.lowcmds), timeout=2.0)
    t_damp = next(t for t, m in robot.lowcmds if is_damping(m))
    # Design bound: target_timeout_s + one 2 ms cycle. Allowed here: + 0.2 s of scheduling/DDS slack.
    assert TARGET_TIMEOUT - 0.02 < t_damp - t_last < TARGET_TIMEOUT + 0.002 + 0.2, t_damp - t_last
    assert robot.spin_until(lambda: robot.state.startswith("DAMPING"), timeout=1.0)
    assert "targets stale" in robot.state


def test_tilt_damps(robot):
    robot.to_active()
    robot.quat = np.array([math.cos(0.5), math.sin(0.5), 0.0, 0.0])  # rolled 1.0 rad > 0.8
    assert robot.spin_until(lambda: robot.state.startswith("DAMPING"), timeout=2.0)
    assert "tilt" in robot.state


def test_nan_lowstate_damps_with_error_and_bridge_survives(robot):
    robot.to_active()
    robot.q = STAND_POSE.copy()
    robot.q[4] = np.nan
    assert robot.spin_until(lambda: robot.state.startswith("DAMPING"), timeout=2.0)
    assert "non-finite" in robot.state
    assert robot.spin_until(
        lambda: any(s.level == b"\x02" and "non-finite" in s.message for d in robot.diags for s in d.status)
    )
    robot.to_passive()  # and it recovers through reset once the readings are sane


def test_remote_combos_drive_the_state_machine(robot):
    robot.to_passive()
    robot.keys = keys_of("L2", "A")
    assert robot.spin_until(lambda: robot.state.startswith("STAND_UP"), timeout=2.0)
    robot.keys = 0
    robot.probe.spin_for(0.05, robot.act)
    robot.keys = keys_of("L2", "B")
    assert robot.spin_until(lambda: robot.state.startswith("DAMPING"), timeout=2.0)
    assert "operator damp" in robot.state
    # Leaving DAMPING from the remote takes the long hold (100 frames here): a short press does nothing.
    robot.keys = 0
    robot.probe.spin_for(0.2, robot.act)
    robot.keys = keys_of("L2", "X")
    n0 = robot.sent
    robot.probe.spin_for(0.3, robot.act)
    assert robot.state.startswith("DAMPING") and robot.sent - n0 < 100
    assert robot.spin_until(lambda: robot.state.startswith("PASSIVE"), timeout=5.0)
    assert robot.sent - n0 >= 100


def test_random_remote_bytes_do_not_drive_the_state_machine(robot):
    """200 LowStates with random remote bytes (valid CRC) from DAMPING, then 200 from PASSIVE: the bridge
    neither leaves DAMPING nor stands up (before the fix: one stand-up and six exits from DAMPING)."""
    rng = np.random.default_rng(7)
    for start in ("DAMPING", "PASSIVE"):
        robot.to_passive()
        if start == "DAMPING":
            assert robot.request("damp").success
            assert robot.spin_until(lambda: robot.state.startswith("DAMPING"))
        first = len(robot.states) - 1  # the state it is in, then every change
        n0 = robot.sent
        while robot.sent - n0 < 200:
            robot.remote = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
            robot.act()
            robot.probe.executor.spin_once(timeout_sec=0.005)
        robot.probe.spin_for(0.2)
        seen = [m.data.split(":")[0] for m in robot.states[first:]]
        assert "STAND_UP" not in seen and "ACTIVE" not in seen, seen
        if start == "DAMPING":
            assert set(seen) == {"DAMPING"}, seen


def test_bad_crc_lowstate_is_dropped_reported_and_damps(robot):
    robot.to_active()
    robot.diags.clear()
    robot.bad_crc = True
    assert robot.spin_until(lambda: robot.state.startswith("DAMPING"), timeout=3.0)
    assert "bad CRC" in robot.state
    # WARN from the first dropped frame, ERROR once it damped; both name the bad input and count it.
    assert robot.spin_until(lambda: _has_status(robot, b"\x02", "bad input: lowstate_crc"))
    assert _has_status(robot, b"\x01", "bad input: lowstate_crc")
    assert int(_diag_value(robot.diags[-1], "lowstate_crc_errors")) >= 10
    ok = robot.request("reset")
    assert not ok.success and "bad CRC" in ok.message
    robot.to_passive()  # valid frames again: reset works


def test_junk_accelerometer_is_not_published_as_nan(robot):
    robot.to_passive()
    robot.accel = np.array([np.nan, np.inf, 1.0])
    robot.imus.clear()
    robot.diags.clear()

    def flagged(m):
        return m.linear_acceleration_covariance[0] == -1.0

    assert robot.spin_until(lambda: sum(map(flagged, robot.imus)) > 5)  # Imu keeps flowing (orientation)
    first = next(i for i, m in enumerate(robot.imus) if flagged(m))
    for m in robot.imus[first:]:  # from the first junk frame on, every Imu says "no estimate"
        a = m.linear_acceleration
        assert (a.x, a.y, a.z) == (0.0, 0.0, 0.0) and m.linear_acceleration_covariance[0] == -1.0
    assert robot.spin_until(
        lambda: any(
            s.level == b"\x01" and "non-finite accelerometer" in s.message for d in robot.diags for s in d.status
        )
    )
    assert robot.state.startswith("PASSIVE")  # reported, not a reason to damp


def test_nothing_non_finite_was_ever_published(robot):
    """Over every test so far (NaN joint angles, junk accelerometer included)."""
    assert robot.joint_states and robot.imus
    for js in robot.joint_states:
        assert np.isfinite(js.position).all() and np.isfinite(js.velocity).all() and np.isfinite(js.effort).all()
    for m in robot.imus:
        o, w, a = m.orientation, m.angular_velocity, m.linear_acceleration
        assert np.isfinite([o.x, o.y, o.z, o.w, w.x, w.y, w.z, a.x, a.y, a.z]).all()


def _has_status(robot, level, text):
    return any(s.level == level and text in s.message for d in robot.diags for s in d.status)


def _diag_value(array, key):
    for s in array.status:
        for kv in s.values:
            if kv.key == key:
                return kv.value
    return None


def test_stopping_the_bridge_sends_damping_first(robot):
    """Runs last: it ends the bridge process."""
    robot.to_active()
    robot.lowcmds.clear()
    robot.spin_until(lambda: len(robot.lowcmds) > 10)
    assert not is_damping(robot.lowcmds[-1][1])
    robot.process.proc.send_signal(2)  # SIGINT, as Ctrl-C
    robot.spin_until(lambda: not robot.process.alive, timeout=10.0)
    robot.probe.spin_for(0.2)
    assert robot.process.proc.returncode == 0
    assert is_damping(robot.lowcmds[-1][1])


def test_sigterm_sends_damping_first():
    """Its own bridge (the module's one ended above): PASSIVE zero-torque LowCmds, then SIGTERM."""
    bridge = NodeProcess("go2_bridge.bridge_node", PARAMS)
    probe = Probe("fake_go2_sigterm")
    fake = FakeRobot(probe)
    try:
        assert fake.spin_until(lambda: len(fake.lowcmds) > 5, timeout=30), bridge.output()
        assert not is_damping(fake.lowcmds[-1][1])  # PASSIVE: kd 0
        bridge.proc.send_signal(signal.SIGTERM)
        fake.spin_until(lambda: not bridge.alive, timeout=10.0)
        probe.spin_for(0.2)
        assert bridge.returncode == 0, bridge.output()
        assert is_damping(fake.lowcmds[-1][1])
    finally:
        probe.close()
        bridge.stop()
    assert "Traceback" not in bridge.output()


def test_constructing_the_node_installs_no_signal_handlers():
    """Signal handlers are the program's (main's) business: a BridgeNode built elsewhere leaves them alone."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from go2_bridge.bridge_node import BridgeNode

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = BridgeNode(context=context)
        assert {sig: signal.getsignal(sig) for sig in before} == before
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_a_cycle_after_the_exit_signal_sends_damping_last():
    """The exit signal's handler runs between two bytecodes of the 500 Hz cycle: a cycle that finishes after it
    (interrupted, or run by the executor before it stops) must not leave its own command as the last one."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from go2_bridge.bridge_node import BridgeNode
    from go2_bridge.lowstate import RobotState

    class Recorder:
        def __init__(self):
            self.damping = []
            self.signal_during_next_publish = None

        def publish(self, msg):
            if self.signal_during_next_publish is not None:  # the handler runs just before this publish
                handler, self.signal_during_next_publish = self.signal_during_next_publish, None
                handler(signal.SIGTERM)
            self.damping.append(is_damping(msg))

        def wait_for_all_acked(self, timeout):
            self.acked_after = len(self.damping)
            return True

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = BridgeNode(context=context)
        node.core.on_lowstate(
            RobotState(
                q=np.asarray(STAND_POSE, dtype=float), dq=np.zeros(12), tau_est=np.zeros(12),
                quaternion_wxyz=np.array([1.0, 0.0, 0.0, 0.0]), gyroscope=np.zeros(3),
                accelerometer=np.array([0.0, 0.0, 9.81]), foot_force=np.full(4, 20.0), wireless_remote=bytes(40),
            ),
            time.monotonic(),
        )  # fmt: skip
        sent = Recorder()
        node._lowcmd_pub = sent  # the messages, not DDS, are under test here
        node._cycle()
        assert sent.damping == [False]  # PASSIVE: zero torque, kd 0
        node.send_exit_damping(signal.SIGTERM)
        # 50 ms of damping at 500 Hz, then the wait for acknowledgements
        assert sent.damping[1:] == [True] * 25 and sent.acked_after == 26
        node._cycle()  # a cycle the executor runs before it stops
        assert sent.damping[-1] is True and all(sent.damping[1:])
        node._exiting = False  # as before the signal; this time it arrives inside the cycle
        sent.damping.clear()
        sent.signal_during_next_publish = node.send_exit_damping
        node._cycle()
        assert sent.damping[:3] == [True, True, True] and sent.damping[-1] is True
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
