"""The controller as a real process with its default velocity backend: targets and feed-forward, gains, the dims it
follows and those asked for anyway on /diagnostics, an invalid command as ERROR (a module of its own: two
controllers on one domain would both publish targets)."""

import numpy as np
import pytest
from controller_feeder import Feeder
from onnx_helpers import write_affine_onnx

from more_common.action_contract import action_from_mapping
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def velocity(tmp_path_factory):
    """The velocity backend with an ONNX policy whose action is its bias, always (zero weights)."""
    bias = np.linspace(-1.0, 1.0, 12).astype(np.float32)
    bias[11] = 4.0  # RL calf: -1.5 + 4 x 0.25 = -0.5 rad, past the knee's -0.838 limit
    path = write_affine_onnx(tmp_path_factory.mktemp("onnx") / "bias.onnx", np.zeros((45, 12), np.float32), bias)
    proc = NodeProcess(
        "wtw_controller.controller_node",
        {"policy_file": str(path), "diagnostics_period_s": 0.2, "posture": True, "max_yaw_rate": 0.5},
    )
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
    assert values["backend"] == "velocity" and values["dims_followed"] == "vx,vy,wz,body_height,pitch,terminate"
    not_followed = "gait_phase,gait_offset,gait_bound,step_frequency,stance_width,footswing_height"
    assert values["dims_not_followed"] == not_followed
    assert values["dims_requested_but_ignored"] == "none"
    assert values["max_speed"] == "the backend's ranges" and values["max_yaw_rate"] == "0.500"  # the limits in force
    feeder.command = action_from_mapping({"vx": 0.3, "body_height": -0.2, "footswing_height": 0.2})
    assert feeder.probe.spin_until(
        lambda: feeder.values().get("dims_requested_but_ignored") == "footswing_height", 10.0, feeder.act
    ), feeder.values()  # body height is followed (posture), footswing height is not
    assert feeder.latest().level == b"\x00"  # asked-for dims a backend cannot do are reported, not an error
    assert feeder.probe.spin_until(
        lambda: feeder.values().get("posture") == "body_height -0.120 m, pitch 0.000 rad", 10.0, feeder.act
    ), feeder.values()
    assert feeder.values()["posture_limited_steps"] == "0"
    feeder.command = action_from_mapping({"body_height": -0.2, "pitch": 0.38})  # the chin would be on the floor
    assert feeder.probe.spin_until(
        lambda: int(feeder.values().get("posture_limited_steps", 0)) > 0, 10.0, feeder.act
    ), feeder.values()
    assert feeder.probe.spin_until(  # the pitch that keeps 0.04 m at -0.12 m (test_posture.py)
        lambda: feeder.values().get("posture") == "body_height -0.120 m, pitch 0.079 rad", 10.0, feeder.act
    ), feeder.values()


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


def test_posture_parameter_switches_the_velocity_backends_posture(tmp_path):
    """Posture is opt-in on the node (off by default, in robot.yaml and in sim_go2.yaml: docs/robot.md); the
    parameter wins over the config file's posture.enabled."""
    from wtw_controller.controller_node import PARAMS, make_backend

    params = {name: default for name, (default, *_rest) in PARAMS.items()}
    backend, _ = make_backend(params)
    assert backend.posture is None and "body_height" not in backend.followed
    config = tmp_path / "velocity.yaml"
    config.write_text("posture:\n  enabled: true\n  pitch: [-0.2, 0.3]\n")
    backend, _ = make_backend({**params, "config_file": str(config)})
    assert backend.posture is None and "pitch" not in backend.followed
    backend, _ = make_backend({**params, "posture": True, "config_file": str(config)})
    assert backend.posture is not None and backend.config.posture.pitch == (-0.2, 0.3)


def test_a_stale_or_future_stamped_joint_state_is_reported_and_warned(velocity):
    """Last in this module: the node's window of ages stays stale for 10 s afterwards."""
    feeder, _ = velocity
    feeder.command = action_from_mapping({"vx": 0.3})
    feeder.state_age_s = 0.0  # stamped when sent (this feeder sends far less often than the bridge's 500 Hz)
    assert feeder.probe.spin_until(lambda: "state_age_p50_ms" in feeder.values(), 5.0, feeder.act), feeder.values()
    assert 0.0 <= float(feeder.values()["state_age_p50_ms"]) < 50.0, feeder.values()
    feeder.state_age_s = 0.1  # stamped 100 ms before it is sent: the bridge's LowState would be that old
    assert feeder.probe.spin_until(
        lambda: float(feeder.values().get("state_age_p50_ms", 0)) >= 100.0, 15.0, feeder.act
    ), feeder.values()
    status = feeder.latest()
    assert status.level == b"\x01"
    assert status.message.startswith("stale joint state: p99 age ") and status.message.endswith(
        " ms > 4 ms: speed capped at 0.4 m/s"
    ), status.message
    values = feeder.values()
    assert values["stale_speed_capped"] == "True"
    assert 100.0 <= float(values["state_age_p99_ms"]) <= float(values["state_age_max_ms"]) < 300.0, values
    assert len(feeder.targets) and values["status"] == "ok"  # a warning: the targets still go out
    feeder.state_age_s = -0.1  # stamped 100 ms after it is sent: the bridge's clock is ahead of the controller's
    assert feeder.probe.spin_until(
        lambda: feeder.latest().message.startswith("joint state stamped up to "), 10.0, feeder.act
    ), feeder.latest().message
    status, values = feeder.latest(), feeder.values()
    assert status.level == b"\x01" and values["stale_speed_capped"] == "True", values
    assert status.message.endswith(
        "the bridge's and the controller's clocks differ, the state's age is unknown: speed capped at 0.4 m/s"
    ), status.message
    assert -300.0 < float(values["state_age_min_ms"]) <= -50.0, values
