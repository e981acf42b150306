"""command_publisher: parameters validated against the contract; publishes, then switches to stop."""

import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def start(*params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "more_vla_policy.command_publisher", "--ros-args"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_out_of_contract_parameter_is_refused_by_name():
    proc = start("vx:=3.0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "vx=3.0" in err and "[-1.0, 1.0]" in err
    assert "Traceback" not in err


def test_publishes_the_command_then_stop():
    import rclpy

    from more_msgs.msg import QuadrupedCommand
    from more_ros.convert import msg_to_command
    from more_ros.names import COMMAND
    from more_ros.qos import COMMAND_QOS

    proc = start("vx:=0.6", "wz:=-0.2", "gait_phase:=0.45", "duration_s:=1.5", "rate_hz:=20.0")
    rclpy.init()
    node = rclpy.create_node("command_publisher_probe")
    got: list = []
    node.create_subscription(QuadrupedCommand, COMMAND, lambda m: got.append((time.monotonic(), m)), COMMAND_QOS)
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not (got and got[-1][1].vx == 0.0 and len(got) > 5):
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.shutdown()
        proc.terminate()
        proc.wait(timeout=10)
    moving = [msg_to_command(m) for _, m in got if m.vx != 0.0]
    assert moving, "no motion command received"
    first = moving[0]
    assert first[0] == pytest.approx(0.6, abs=1e-6) and first[2] == pytest.approx(-0.2, abs=1e-6)
    assert tuple(first[3:6]) == (0.5, 0.0, 0.0)  # gait snapped to trot
    assert got[-1][1].vx == 0.0 and got[-1][1].wz == 0.0, "never switched to the stop command"
    np.testing.assert_allclose(msg_to_command(got[-1][1])[:3], 0.0)
