"""The controller as a real process with the walk-these-ways backend: wiring, 50 Hz output and watchdogs over DDS;
bad parameters of either backend (the velocity backend: test_controller_node_velocity.py)."""

import subprocess
import sys
import time

import numpy as np
import pytest
from controller_feeder import Feeder
from wtw_helpers import make_run

from more_ros.testing import NodeProcess, Probe
from wtw_controller.actions import action_to_targets
from wtw_controller.config import WtwConfig

pytestmark = pytest.mark.ros


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
