"""The controller as a real process, with each backend: wiring, 50 Hz output, watchdogs and diagnostics over DDS."""

import subprocess
import sys
import time

import numpy as np
import pytest
from onnx_helpers import write_affine_onnx
from wtw_helpers import make_run

from more_common.action_contract import action_from_mapping
from more_ros import names
from more_ros.convert import command_to_msg
from more_ros.testing import NodeProcess, Probe
from wtw_controller.actions import action_to_targets
from wtw_controller.config import WtwConfig
from wtw_controller.joint_order import SDK_JOINT_NAMES

pytestmark = pytest.mark.ros


class Feeder:
    """Plays the bridge (JointState, Imu) and the VLA policy (QuadrupedCommand)."""

    def __init__(self, probe):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Imu, JointState

        from more_msgs.msg import JointTargets, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS

        node = probe.node
        self.probe = probe
        self.js_pub = node.create_publisher(JointState, names.JOINT_STATES, SENSOR_QOS)
        self.imu_pub = node.create_publisher(Imu, names.IMU, SENSOR_QOS)
        self.cmd_pub = node.create_publisher(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
        self.targets = probe.listen(JointTargets, names.JOINT_TARGETS, COMMAND_QOS, stamp=True)
        self.diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        self.JointState, self.Imu = JointState, Imu
        self.sensors = True
        self.commands = True
        self.command = action_from_mapping({"vx": 0.5})
        self._n = 0

    def act(self):
        self._n += 1
        if self.sensors:
            js = self.JointState()
            js.name = list(reversed(SDK_JOINT_NAMES))  # any order: the controller maps by name
            js.position = [0.0] * 12
            js.velocity = [0.0] * 12
            self.js_pub.publish(js)
            imu = self.Imu()
            imu.orientation.w = 1.0
            self.imu_pub.publish(imu)
        if self.commands and self._n % 10 == 0:
            self.cmd_pub.publish(command_to_msg(self.command))

    def status(self):
        latest = self.latest()
        return latest.message if latest is not None else ""

    def latest(self):
        for d in reversed(self.diags):
            for s in d.status:
                if s.name.startswith("wtw_controller"):
                    return s
        return None

    def values(self):
        latest = self.latest()
        return {kv.key: kv.value for kv in latest.values} if latest is not None else {}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    run = tmp_path_factory.mktemp("wtw_run")
    _, _, _, bias = make_run(run, seed=5, scale=0.0)  # zero weights: the action is the bias, always
    proc = NodeProcess("wtw_controller.controller_node", {"run_dir": str(run), "diagnostics_period_s": 0.2})
    probe = Probe("controller_feeder")
    feeder = Feeder(probe)
    try:
        assert probe.spin_until(lambda: len(feeder.targets) > 3, 60.0, feeder.act), proc.output()
        yield feeder, bias
    finally:
        probe.close()
        rc = proc.stop()
        out = proc.output()
        assert rc == 0 and "Traceback" not in out, out


def test_targets_are_the_policy_action_in_sdk_order_at_50_hz(running):
    feeder, bias = running
    feeder.targets.clear()
    feeder.probe.spin_for(2.0, feeder.act)
    n = len(feeder.targets)
    assert 60 <= n <= 105, f"{n} targets in 2 s"  # 100 nominal; a starved timer skips periods
    gaps = np.diff([t for t, _ in feeder.targets])
    assert 0.015 < np.median(gaps) < 0.025, np.median(gaps)
    msg = feeder.targets[-1][1]
    np.testing.assert_allclose(msg.position, action_to_targets(bias.astype(np.float64), WtwConfig()), atol=1e-6)
    np.testing.assert_allclose(msg.kp, 20.0)
    np.testing.assert_allclose(msg.kd, 0.5)
    assert not any(msg.velocity) and not any(msg.torque_ff)
    assert feeder.probe.spin_until(lambda: feeder.status() == "ok", 2.0, feeder.act)


def test_command_timeout_stands_in_place(running):
    feeder, _ = running
    feeder.commands = False
    assert feeder.probe.spin_until(lambda: feeder.status() == "command timeout: standing", 3.0, feeder.act)
    n = len(feeder.targets)
    feeder.probe.spin_for(0.3, feeder.act)
    assert len(feeder.targets) > n  # targets keep flowing while standing
    feeder.commands = True
    assert feeder.probe.spin_until(lambda: feeder.status() == "ok", 3.0, feeder.act)


def test_sensor_loss_stops_targets_and_they_resume(running):
    feeder, _ = running
    feeder.sensors = False
    t_stop = time.monotonic()
    feeder.probe.spin_for(0.6, feeder.act)
    last = max(t for t, _ in feeder.targets)
    # sensor_timeout_s (0.1) + one 20 ms step, with 0.3 s of scheduling/DDS slack
    assert last - t_stop < 0.1 + 0.02 + 0.3, last - t_stop
    assert "joint states" in feeder.status() or "IMU" in feeder.status()
    feeder.sensors = True
    n = len(feeder.targets)
    assert feeder.probe.spin_until(lambda: len(feeder.targets) > n + 3, 3.0, feeder.act)


@pytest.fixture(scope="module")
def velocity(tmp_path_factory):
    """The velocity backend with an ONNX policy whose action is its bias, always (zero weights)."""
    bias = np.linspace(-1.0, 1.0, 12).astype(np.float32)
    bias[11] = 4.0  # RL calf: -1.5 + 4 x 0.25 = -0.5 rad, past the knee's -0.838 limit
    path = write_affine_onnx(tmp_path_factory.mktemp("onnx") / "bias.onnx", np.zeros((45, 12), np.float32), bias)
    proc = NodeProcess("wtw_controller.controller_node", {"policy_file": str(path), "diagnostics_period_s": 0.2})
    probe = Probe("velocity_feeder")
    feeder = Feeder(probe)
    try:
        assert probe.spin_until(lambda: len(feeder.targets) > 3, 60.0, feeder.act), proc.output()
        yield feeder, bias.astype(np.float64)
    finally:
        probe.close()
        rc = proc.stop()
        out = proc.output()
        assert rc == 0 and "Traceback" not in out, out


def test_velocity_backend_targets_gains_and_what_it_follows(velocity):
    feeder, bias = velocity
    assert feeder.probe.spin_until(lambda: feeder.status() == "ok", 3.0, feeder.act)
    msg = feeder.targets[-1][1]
    wanted = np.array([0.0, 0.8, -1.5] * 4) + bias * np.array([0.125, 0.25, 0.25] * 4)
    np.testing.assert_allclose(msg.position[:11], wanted[:11], atol=1e-6)
    # beyond the range: the limit (1e-4 inside) plus the torque that makes the PD law the same
    assert msg.position[11] == pytest.approx(-0.83776 - 1e-4)
    np.testing.assert_allclose(msg.torque_ff, [0.0] * 11 + [20.0 * (-0.5 - (-0.83776 - 1e-4))], atol=1e-6)
    np.testing.assert_allclose(msg.kp, 20.0)
    np.testing.assert_allclose(msg.kd, 0.5)
    values = feeder.values()
    assert values["backend"] == "velocity" and values["dims_followed"] == "vx,vy,wz,terminate"
    assert values["dims_not_followed"] == (
        "gait_phase,gait_offset,gait_bound,step_frequency,body_height,pitch,stance_width,footswing_height"
    )
    assert values["dims_requested_but_ignored"] == "none"
    feeder.command = action_from_mapping({"vx": 0.3, "body_height": -0.2, "footswing_height": 0.2})
    assert feeder.probe.spin_until(
        lambda: feeder.values().get("dims_requested_but_ignored") == "body_height,footswing_height", 10.0, feeder.act
    ), feeder.values()
    assert feeder.latest().level == b"\x00"  # asked-for dims a backend cannot do are reported, not an error


def test_invalid_command_is_an_error_and_the_robot_stands(velocity):
    feeder, _ = velocity
    bad = action_from_mapping({"vx": 0.5})
    bad[2] = np.nan
    feeder.command = bad
    assert feeder.probe.spin_until(lambda: feeder.status().startswith("invalid"), 3.0, feeder.act), feeder.status()
    status = feeder.latest()
    assert status.level == b"\x02" and "wz" in status.message and status.message.endswith("standing")
    n = len(feeder.targets)
    feeder.probe.spin_for(0.3, feeder.act)
    assert len(feeder.targets) > n  # standing: targets keep flowing
    feeder.command = action_from_mapping({"vx": 0.5})
    assert feeder.probe.spin_until(lambda: feeder.status() == "ok", 3.0, feeder.act)
    assert feeder.latest().level == b"\x00"


@pytest.mark.parametrize(
    "params,message",
    [
        ({"backend": "wtw"}, "run_dir"),
        ({"run_dir": "/nonexistent/run"}, "body_latest"),
        ({"policy_file": "/nonexistent/policy.onnx"}, "does not exist"),
        ({"backend": "velocity", "run_dir": "/some/run"}, "policy_file"),
        ({"backend": "walk"}, "backend"),
    ],
)
def test_bad_parameters_exit_2_with_one_line(params, message):
    args = [sys.executable, "-m", "wtw_controller.controller_node", "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
