"""Malformed-message fuzzing of the bridge as a real process (the hardening issue's fuzz suite).

A probe plays the robot (healthy LowState at ~100 Hz) and the controller (sane JointTargets), takes the
bridge into ACTIVE before every example, then publishes one class of hypothesis-generated bad input:
non-finite or huge JointTargets, LowState with junk values, LowState with bad CRCs, LowState with random
remote bytes, e-stop sequences. Asserted: the process stays alive (and exits cleanly at the end); every
LowCmd it sent all along has a valid CRC and is within the joint, velocity, torque and gain limits (damping
included); each class raised the matching WARN/ERROR on /diagnostics. Bounded: a fixed number of examples
per class, ~30 s in all on the 2-core build machine.
"""

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from go2_bridge.crc import crc32_words_reference
from go2_bridge.go2 import Q_MAX, Q_MIN, STAND_POSE, TORQUE_MAX, VELOCITY_MAX
from go2_bridge.lowcmd import lowcmd_crc, pack_lowcmd
from go2_bridge.lowstate_wire import lowstate_crc
from go2_bridge.remote import encode_remote
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros

KP_MAX, KD_MAX = 100.0, 10.0
PARAMS = {
    "stand_up_duration_s": 0.1,
    "activate_blend_s": 0.0,
    "min_damping_s": 0.05,
    # The probe (LowState, targets) can stall for a second on a loaded machine; staleness is tested elsewhere
    # (test_safety.py, test_bridge_node.py) and must not be what damps here.
    "lowstate_timeout_s": 2.0,
    "target_timeout_s": 2.0,
    "diagnostics_period_s": 0.1,
    "input_warn_hold_s": 1.0,
}
EXAMPLES = 3  # per class
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip

f64 = st.floats(allow_nan=True, allow_infinity=True)
f32 = st.floats(allow_nan=True, allow_infinity=True, width=32)
vec12 = arrays(np.float64, 12, elements=f64)
non_finite = st.sampled_from([np.nan, np.inf, -np.inf])


class Rig:
    def __init__(self, probe: Probe, bridge: NodeProcess) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Bool, String

        from more_msgs.msg import JointTargets
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
        from unitree_go.msg import LowCmd, LowState

        self.probe, self.bridge = probe, bridge
        node = probe.node
        self.lowstate_pub = node.create_publisher(LowState, names.LOWSTATE, SENSOR_QOS)
        self.targets_pub = node.create_publisher(JointTargets, names.JOINT_TARGETS, COMMAND_QOS)
        self.estop_pub = node.create_publisher(Bool, names.ESTOP, COMMAND_QOS)
        self.lowcmds = probe.listen(LowCmd, names.LOWCMD, SENSOR_QOS)
        self.states = probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
        self.diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        self.LowState, self.JointTargets, self.Bool = LowState, JointTargets, Bool
        self.checked = 0
        self.crc_references = 0
        self.active_examples = 0

    # -- the healthy robot and controller ------------------------------------------------------------
    def healthy_lowstate(self):
        msg = self.LowState()
        for i in range(12):
            msg.motor_state[i].q = float(STAND_POSE[i])
        msg.imu_state.quaternion[0] = 1.0
        msg.imu_state.accelerometer[2] = 9.81
        msg.crc = lowstate_crc(msg)
        return msg

    def sane_targets(self):
        t = self.JointTargets()
        t.position, t.kp, t.kd = STAND_POSE.tolist(), [20.0] * 12, [0.5] * 12
        return t

    def act(self):
        self.lowstate_pub.publish(self.healthy_lowstate())
        self.targets_pub.publish(self.sane_targets())

    @property
    def state(self) -> str:
        return self.states[-1].data if self.states else ""

    def wait_state(self, prefix: str) -> bool:
        """The latched state topic and /diagnostics are separate topics: one may arrive before the other."""
        return self.probe.spin_until(lambda: self.state.startswith(prefix), 2.0, self.act, every=0.01)

    def spin(self, seconds: float) -> None:
        self.probe.spin_for(seconds, self.act)
        self.check_lowcmds()

    def request(self, what: str) -> bool:
        from std_srvs.srv import Trigger

        service = {"stand_up": names.BRIDGE_STAND_UP, "activate": names.BRIDGE_ACTIVATE,
                   "reset": names.BRIDGE_RESET}[what]  # fmt: skip
        return self.probe.call(Trigger, service, action=self.act).success

    def to_active(self) -> None:
        assert self.bridge.alive, self.bridge.output()
        self.estop_pub.publish(self.Bool(data=False))
        for _ in range(3):  # a DAMPING that just started waits min_damping_s; retry a few times
            if self.state.startswith("ACTIVE"):
                break
            if self.state.startswith("DAMPING"):
                self.spin(0.1)
                self.request("reset")
            if self.probe.spin_until(lambda: self.state.startswith("PASSIVE"), 1.0, self.act, every=0.01):
                self.request("stand_up")
                self.spin(0.15)
                self.request("activate")
            self.probe.spin_until(lambda: self.state.startswith("ACTIVE"), 1.0, self.act, every=0.01)
        assert self.state.startswith("ACTIVE"), self.state
        self.active_examples += 1

    # -- checks ----------------------------------------------------------------------------------------
    def check_lowcmds(self) -> None:
        """Every LowCmd received so far: CRC (fast path; every 50th also by the bit-by-bit reference), limits."""
        for msg in self.lowcmds[self.checked :]:
            assert msg.crc == lowcmd_crc(msg)
            if self.checked % 50 == 0:
                words = struct.unpack("<203I", pack_lowcmd(msg))
                assert words[202] == crc32_words_reference(words[:202])
                self.crc_references += 1
            m = msg.motor_cmd
            q, dq, kp, kd, tau = (
                np.array([getattr(m[i], k) for i in range(12)]) for k in ("q", "dq", "kp", "kd", "tau")
            )
            assert np.isfinite([q, dq, kp, kd, tau]).all()
            assert np.all((q >= Q_MIN) & (q <= Q_MAX)), q
            assert np.all(np.abs(dq) <= VELOCITY_MAX) and np.all(np.abs(tau) <= TORQUE_MAX), (dq, tau)
            assert np.all((kp >= 0) & (kp <= KP_MAX) & (kd >= 0) & (kd <= KD_MAX)), (kp, kd)
            assert all(m[i].mode == 0 and m[i].kp == 0 and m[i].kd == 0 for i in range(12, 20))
            self.checked += 1

    def count(self, key: str) -> int:
        for d in reversed(self.diags):
            for s in d.status:
                for kv in s.values:
                    if kv.key == key:
                        return int(kv.value)
        return 0

    def expect_report(
        self, text: str, since: int, counter: str | None = None, before: int = 0, action=None
    ) -> None:  # fmt: skip
        """A WARN/ERROR status naming `text` after diags[since:] (and `counter` past `before`), calling
        `action` (default: the healthy robot and controller) every 5 ms meanwhile."""

        def seen() -> bool:
            named = any(s.level[0] >= 1 and text in s.message for d in self.diags[since:] for s in d.status)
            return named and (counter is None or self.count(counter) > before)

        assert self.probe.spin_until(seen, 5.0, action or self.act, every=0.005), (text, [
            s.message for d in self.diags[since:] for s in d.status][-3:])  # fmt: skip
        self.check_lowcmds()
        assert self.bridge.alive, self.bridge.output()


@pytest.fixture(scope="module")
def rig():
    bridge = NodeProcess("go2_bridge.bridge_node", PARAMS)
    probe = Probe("fuzz_probe")
    r = Rig(probe, bridge)
    try:
        assert probe.spin_until(lambda: r.lowcmds and r.state, 30.0, r.act, every=0.01), bridge.output()
        yield r
        r.spin(0.2)
        assert bridge.alive, bridge.output()
        # LowCmds come at 500 Hz; a busy probe drops many of its best-effort copies, but not nearly all.
        assert r.checked > 10 * r.active_examples and r.crc_references >= 2, (r.checked, r.crc_references)
    finally:
        probe.close()
        rc = bridge.stop()
        out = bridge.output()
    assert rc == 0, out
    assert "Traceback" not in out, out


def _fuzz(rig: Rig, messages, publisher, text: str, since: int, counter: str | None = None, before: int = 0):
    """Publish the fuzz messages in turn, 5 ms apart, until the bridge reports `text`; what they do not replace
    (healthy LowState, sane targets) goes on meanwhile. They are repeated, as a broken sender would: a reader
    that keeps only the newest sample (depth 1 for targets, 5 for LowState) may skip some while busy."""
    cycle = iter(list(messages) * 2000)

    def send() -> None:
        publisher.publish(next(cycle))
        if publisher is not rig.lowstate_pub:
            rig.lowstate_pub.publish(rig.healthy_lowstate())
        if publisher is not rig.targets_pub:
            rig.targets_pub.publish(rig.sane_targets())

    for _ in messages:  # every message at least once
        send()
        rig.probe.spin_for(0.005)
    rig.expect_report(text, since, counter, before, action=send)


def _targets(rig: Rig, p, v, kp, kd, tau):
    t = rig.JointTargets()
    t.position, t.velocity, t.kp, t.kd, t.torque_ff = (a.tolist() for a in (p, v, kp, kd, tau))
    return t


@FUZZ
@given(data=st.lists(st.tuples(vec12, vec12, vec12, vec12, vec12), min_size=1, max_size=5),
       where=st.tuples(st.integers(0, 4), st.integers(0, 11)), bad=non_finite)  # fmt: skip
def test_non_finite_targets(rig, data, where, bad):
    rig.to_active()
    since, before = len(rig.diags), rig.count("bad_input.targets_invalid")
    msgs = []
    for arrays5 in data:
        arrays5 = [a.copy() for a in arrays5]
        arrays5[where[0]][where[1]] = bad  # at least this one is not finite
        msgs.append(_targets(rig, *arrays5))
    _fuzz(rig, msgs, rig.targets_pub, "targets_invalid", since, "bad_input.targets_invalid", before)
    rig.expect_report("joint targets have non-finite values", since)  # in ACTIVE they damp (ERROR)
    assert rig.wait_state("DAMPING"), rig.state


huge = st.floats(allow_nan=False, allow_infinity=False, min_value=-1.7e308, max_value=1.7e308)


@FUZZ
@given(data=st.lists(st.tuples(*[arrays(np.float64, 12, elements=huge)] * 5), min_size=1, max_size=5),
       where=st.integers(0, 11), big=st.sampled_from([1e30, -1e30, 1.7e308, 31.0, -20.1]))  # fmt: skip
def test_huge_targets_are_clamped(rig, data, where, big):
    rig.to_active()
    since, before = len(rig.diags), rig.count("bad_input.targets_beyond_limits")
    msgs = []
    for p, v, kp, kd, tau in data:
        v = v.copy()
        v[where] = big  # at least one velocity past the limit
        msgs.append(_targets(rig, p, v, kp, kd, tau))
    _fuzz(rig, msgs, rig.targets_pub, "targets_beyond_limits", since, "bad_input.targets_beyond_limits", before)
    # Finite targets on a healthy robot are clamped, not a reason to damp: the LowCmds above were ACTIVE ones.
    assert rig.state.startswith("ACTIVE"), rig.state


@FUZZ
@given(frames=st.lists(st.tuples(arrays(np.float32, 12, elements=f32), arrays(np.float32, 12, elements=f32),
                                 arrays(np.float32, 4, elements=f32), arrays(np.float32, 3, elements=f32),
                                 arrays(np.float32, 3, elements=f32), arrays(np.int16, 4),
                                 st.binary(min_size=40, max_size=40)),
                       min_size=1, max_size=8))  # fmt: skip
def test_junk_lowstate_values(rig, frames):
    rig.to_active()
    since, before = len(rig.diags), rig.count("bad_input.lowstate_values")
    msgs = []
    for i, (q, dq, quat, gyro, accel, foot, remote) in enumerate(frames):
        msg = rig.healthy_lowstate()
        if i == 0:
            accel = accel.copy()
            accel[0] = np.nan  # at least one junk reading
        for k in range(12):
            msg.motor_state[k].q, msg.motor_state[k].dq = float(q[k]), float(dq[k])
        msg.imu_state.quaternion, msg.imu_state.gyroscope, msg.imu_state.accelerometer = quat, gyro, accel
        msg.foot_force, msg.wireless_remote = foot, np.frombuffer(remote, dtype=np.uint8).copy()
        msg.crc = lowstate_crc(msg)
        msgs.append(msg)
    _fuzz(rig, msgs, rig.lowstate_pub, "lowstate_values", since, "bad_input.lowstate_values", before)


@FUZZ
@given(crcs=st.lists(st.integers(0, 2**32 - 1), min_size=12, max_size=20), junk_q=f32)
def test_bad_crc_lowstate(rig, crcs, junk_q):
    rig.to_active()
    since, before = len(rig.diags), rig.count("lowstate_crc_errors")
    msgs = []
    for crc in crcs:
        msg = rig.healthy_lowstate()
        msg.motor_state[0].q = junk_q  # what a corrupted frame could carry: never reaches the core
        good = lowstate_crc(msg)
        msg.crc = crc if crc != good else good ^ 1
        msgs.append(msg)
    # Only bad frames (a busy bridge's best-effort queue may drop some, so not a fixed number): counted, then
    # sensor loss, damped with the CRC named (ERROR).
    _fuzz(rig, msgs, rig.lowstate_pub, "LowState lost", since, "lowstate_crc_errors", before)
    assert rig.wait_state("DAMPING") and "bad CRC" in rig.state, rig.state
    assert any("bad input: lowstate_crc" in s.message for d in rig.diags[since:] for s in d.status)


@FUZZ
@given(remotes=st.lists(st.binary(min_size=40, max_size=40), min_size=5, max_size=40))
def test_random_remote_bytes(rig, remotes):
    rig.to_active()
    since, before = len(rig.diags), rig.count("bad_input.remote_implausible")
    msgs = []
    for i, remote in enumerate(remotes):
        msg = rig.healthy_lowstate()
        raw = bytearray(remote)
        if i == 0:
            raw[4:8] = struct.pack("<f", float("nan"))  # at least one frame with a stick that is not a stick
        msg.wireless_remote = np.frombuffer(bytes(raw), dtype=np.uint8).copy()
        msg.crc = lowstate_crc(msg)
        msgs.append(msg)
    _fuzz(rig, msgs, rig.lowstate_pub, "remote_implausible", since, "bad_input.remote_implausible", before)


@FUZZ
@given(sequence=st.lists(st.booleans(), min_size=1, max_size=10))
def test_estop_sequences(rig, sequence):
    rig.to_active()
    since = len(rig.diags)
    _fuzz(rig, [rig.Bool(data=b) for b in [*sequence, True]], rig.estop_pub, "e-stop", since)
    assert rig.wait_state("DAMPING"), rig.state
    rig.estop_pub.publish(rig.Bool(data=False))


def test_a_valid_remote_frame_is_still_understood(rig):
    """Control: after all of the above, the bridge still obeys a deliberately held damp combo (held = sent on
    until it acts, as a thumb stays on the buttons; a busy bridge may skip some best-effort frames)."""
    from go2_bridge.remote import keys_of

    rig.to_active()
    msg = rig.healthy_lowstate()
    msg.wireless_remote = np.frombuffer(encode_remote(keys_of("L2", "B")), dtype=np.uint8).copy()
    msg.crc = lowstate_crc(msg)

    def hold() -> None:
        rig.lowstate_pub.publish(msg)
        rig.targets_pub.publish(rig.sane_targets())

    assert rig.probe.spin_until(lambda: "operator damp" in rig.state, 5.0, hold, every=0.005), rig.state
