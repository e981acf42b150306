"""command_mux in its own process over real DDS: the VLA passes through unchanged, a teleop Twist overrides it while
it keeps arriving (mirrored on /cmd_vel, reported on /diagnostics), the robot stands after the deadman until the VLA
decides anew, bad input is a stop and a diagnostic, never a crash; bad parameters exit 2 by name."""

import math
import subprocess
import sys

import numpy as np
import pytest

from more_common.action_contract import INDEX, stand_command
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros

VLA_BINS = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 0]


def _diag(msgs, name="more_teleop: command mux"):
    out = []
    for m in msgs:
        for s in m.status:
            if s.name == name:
                level = s.level[0] if isinstance(s.level, bytes) else s.level
                out.append((level, s.message, {kv.key: kv.value for kv in s.values}))
    return out


def test_mux_over_dds():
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import Twist

    from more_msgs.msg import QuadrupedCommand
    from more_ros.convert import command_to_msg, msg_to_command
    from more_ros.qos import COMMAND_QOS, STATUS_QOS

    mux = NodeProcess("more_teleop.mux_node", {"teleop_timeout_s": 0.5, "stop_rate_hz": 10.0})
    probe = Probe("mux_probe")
    try:
        out = probe.listen(QuadrupedCommand, names.COMMAND, COMMAND_QOS, stamp=True)
        cmd_vel = probe.listen(Twist, names.CMD_VEL, COMMAND_QOS, stamp=True)
        diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        vla_pub = probe.node.create_publisher(QuadrupedCommand, names.VLA_COMMAND, COMMAND_QOS)
        teleop_pub = probe.node.create_publisher(QuadrupedCommand, names.TELEOP_COMMAND, COMMAND_QOS)
        twist_pub = probe.node.create_publisher(Twist, names.TELEOP_TWIST, COMMAND_QOS)
        vla_cmd = stand_command()
        vla_cmd[INDEX["vx"]], vla_cmd[INDEX["wz"]] = 0.4, -0.2
        seq = [0]

        def send_vla():
            seq[0] += 1
            msg = command_to_msg(vla_cmd, bins=VLA_BINS, q_values=[0.5] * 12)
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1000, seq[0]  # an image stamp, to be kept
            vla_pub.publish(msg)

        def twist(vx, vy, wz, lin_z=0.0):
            t = Twist()
            t.linear.x, t.linear.y, t.linear.z, t.angular.z = vx, vy, lin_z, wz
            return t

        assert mux.alive
        # 1. the VLA alone: passed through unchanged (stamp, bins, Q-values), /cmd_vel mirrors it
        assert probe.spin_until(lambda: len(out) >= 5, 20, send_vla, every=0.1), mux.output()[-2000:]
        _, m = out[-1]
        assert list(m.bins) == VLA_BINS and m.header.stamp.sec == 1000 and m.header.stamp.nanosec > 0
        assert math.isclose(m.vx, 0.4, abs_tol=1e-6) and math.isclose(m.q_values[3], 0.5)
        assert probe.spin_until(lambda: cmd_vel and math.isclose(cmd_vel[-1][1].linear.x, 0.4, abs_tol=1e-6), 5)
        assert math.isclose(cmd_vel[-1][1].angular.z, -0.2, abs_tol=1e-6)

        # 2. a teleop Twist (REP-103) overrides while it keeps arriving; the VLA keeps deciding
        n0 = len(out)

        def both():
            send_vla()
            twist_pub.publish(twist(0.25, -0.1, 0.3, lin_z=0.5))

        probe.spin_for(1.0, both, every=0.1)
        mixed = [msg for _, msg in out[n0:]]
        from_twist = [m for m in mixed if math.isclose(m.vx, 0.25, abs_tol=1e-6)]
        assert len(from_twist) >= 5
        assert all(list(m.bins) == [-1] * 12 and math.isclose(m.vy, -0.1, abs_tol=1e-6) for m in from_twist)
        assert math.isclose(from_twist[-1].wz, 0.3, abs_tol=1e-6)
        assert math.isclose(mixed[-1].vx, 0.25, abs_tol=1e-6), "the VLA got through during the override"
        assert math.isclose(cmd_vel[-1][1].linear.x, 0.25, abs_tol=1e-6)
        # the report at the take-over comes before any VLA command was dropped: wait (both still sending) for one
        # that names the override; the mux reports every diagnostics_period_s
        overriding = lambda: [  # noqa: E731
            d for d in _diag(diags)
            if d[2].get("active_source") == "twist" and d[2].get("overrides") == "1" and "overriding the VLA" in d[1]
        ]  # fmt: skip
        assert probe.spin_until(lambda: overriding(), 5, both, every=0.1)
        assert overriding()[-1][2]["twist.ignored_fields"] == "linear.z"

        # 3. both go silent: after the deadman the robot stands (stop owed, /cmd_vel zeros) ...
        n1 = len(out)

        def stops() -> list:  # after the last operator command still in flight when both went silent
            later = [msg for _, msg in out[n1:]]
            last = max((i for i, m in enumerate(later) if math.isclose(m.vx, 0.25, abs_tol=1e-6)), default=-1)
            return [m for m in later[last + 1 :] if list(m.bins) == [-1] * 12]

        assert probe.spin_until(lambda: len(stops()) >= 5, 10)
        stops = stops()
        assert all(np.allclose(msg_to_command(s), stand_command(), atol=1e-6) for s in stops)
        assert [(t.linear.x, t.linear.y, t.angular.z) for _, t in cmd_vel[-3:]] == [(0.0, 0.0, 0.0)] * 3
        assert probe.spin_until(lambda: any(d[0] == 1 and "teleop released" in d[1] for d in _diag(diags)), 5)
        # ... until the VLA decides anew
        n2 = len(out)
        assert probe.spin_until(lambda: any(list(m.bins) == VLA_BINS for _, m in out[n2:]), 5, send_vla, every=0.1)

        # 4. bad input: NaN from the operator is a stop (and an ERROR naming the field); the mux lives on
        bad = stand_command()
        bad[INDEX["vx"]] = 0.3
        bad_msg = command_to_msg(bad)
        bad_msg.pitch = math.nan
        n3 = len(out)

        def send_bad():
            send_vla()
            teleop_pub.publish(bad_msg)

        probe.spin_for(0.8, send_bad, every=0.1)
        after = [m for _, m in out[n3:]]
        first_stop = next(i for i, m in enumerate(after) if list(m.bins) == [-1] * 12)
        assert all(list(m.bins) == VLA_BINS for m in after[:first_stop])  # the VLA until the bad input arrived
        assert len(after) - first_stop >= 3 and all(
            m.vx == 0.0 and list(m.bins) == [-1] * 12 for m in after[first_stop:]
        )
        assert probe.spin_until(
            lambda: any(d[0] == 2 and "teleop (non-finite pitch)" in d[1] for d in _diag(diags)), 5
        ), _diag(diags)[-3:]
        # out of range: clipped to the contract's bounds and reported
        far = stand_command()
        far[INDEX["vx"]] = 3.0
        n4 = len(out)
        probe.spin_for(0.5, lambda: teleop_pub.publish(command_to_msg(far)), every=0.1)
        assert any(math.isclose(m.vx, 1.0) for _, m in out[n4:])
        assert probe.spin_until(lambda: any("clipped" in d[1] and "vx" in d[1] for d in _diag(diags)), 5)
        assert mux.alive
    finally:
        probe.close()
        rc = mux.stop()
    log = mux.output()
    assert rc == 0 and "Traceback" not in log, log[-3000:]


def test_bad_parameters_exit_2_naming_them():
    for param, needle in (("resume:=later", "'resume'"), ("teleop_timeout_s:=0.0", "'teleop_timeout_s'"),
                          ("deadman:=1.0", "['deadman']")):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "more_teleop.mux_node", "--ros-args", "-p", param],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr and "Traceback" not in proc.stderr
