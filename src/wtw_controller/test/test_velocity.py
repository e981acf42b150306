"""The velocity backend against hand computation: observation layout and scales, action -> targets, the yaw
trim, command mapping, posture, ignored dims, and the ONNX runner (affine policies written by hand)."""

import math

import numpy as np
import pytest
from onnx_helpers import write_affine_onnx

from more_common.action_contract import action_from_mapping, stand_command
from wtw_controller.backend import Sensors, not_followed, requested_but_ignored
from wtw_controller.core import Controller
from wtw_controller.observation import gravity_from_quaternion
from wtw_controller.onnx_policy import OnnxPolicy, PolicyLoadError
from wtw_controller.posture import PostureConfig, level_gravity, posture_pose
from wtw_controller.velocity import VelocityBackend, VelocityConfig, VelocityRanges, load_velocity_config

# A known state, SDK order FR, FL, RR, RL x (hip, thigh, calf)
Q = np.array([-0.2, 0.9, -1.6, 0.15, 0.7, -1.4, -0.05, 1.1, -1.7, 0.12, 0.95, -1.45])
DQ = np.array([1.0, -2.0, 3.0, 0.5, 0.0, -1.0, 2.0, 2.0, -4.0, 0.0, 1.0, 6.0])
GYRO = np.array([0.4, -0.8, 1.2])
ROLL, PITCH, YAW = 0.1, -0.2, 0.3
STAND = np.zeros(5)  # vx, vy, wz, body_height, pitch
NOMINAL = np.array([0.0, 0.8, -1.5] * 4)


def quat_xyzw(r, p, y):
    cr, sr, cp, sp, cy, sy = (math.cos(r / 2), math.sin(r / 2), math.cos(p / 2), math.sin(p / 2),
                              math.cos(y / 2), math.sin(y / 2))  # fmt: skip
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy])  # fmt: skip


def sensors(gyro=GYRO, rpy=(ROLL, PITCH, YAW)):
    return Sensors(Q.copy(), DQ.copy(), quat_xyzw(*rpy), np.asarray(gyro, float))


@pytest.fixture(scope="module")
def affine(tmp_path_factory):
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((45, 12)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(12) * 0.5).astype(np.float32)
    path = write_affine_onnx(tmp_path_factory.mktemp("onnx") / "affine.onnx", w, b)
    return OnnxPolicy(path), w.astype(np.float64), b.astype(np.float64)


def test_observation_action_and_targets_by_hand(affine):
    policy, w, b = affine
    backend = VelocityBackend(policy, VelocityConfig(yaw_trim=False))
    cmd, how = backend.map_command(action_from_mapping({"vx": 0.4, "vy": -0.2, "wz": 0.3}))
    assert how == "ok" and cmd.tolist() == [0.4, -0.2, 0.3, 0.0, 0.0]
    out = backend.step(sensors(), cmd)
    gravity = [math.sin(PITCH), -math.cos(PITCH) * math.sin(ROLL), -math.cos(PITCH) * math.cos(ROLL)]
    default = np.array([0.0, 0.8, -1.5] * 4)
    obs = np.concatenate([GYRO * 0.25, gravity, [0.4, -0.2, 0.3], Q - default, DQ * 0.05, np.zeros(12)])
    np.testing.assert_allclose(out.observation, obs, atol=1e-12)
    action = obs @ w + b
    np.testing.assert_allclose(out.action, action, atol=1e-4)  # float32 inside onnxruntime
    scale = np.array([0.125, 0.25, 0.25] * 4)
    np.testing.assert_allclose(out.targets, default + out.action * scale, atol=1e-12)
    # FR hip (motor 0) gets action 0 x 0.125 around 0; RL calf (motor 11) action 11 x 0.25 around -1.5
    assert out.targets[0] == pytest.approx(out.action[0] * 0.125)
    assert out.targets[11] == pytest.approx(-1.5 + out.action[11] * 0.25)
    second = backend.step(sensors(), cmd)
    np.testing.assert_allclose(second.observation[33:], out.action)  # last action fed back
    backend.reset()
    assert not backend.last_action.any()


def test_observation_and_action_clipped_to_100():
    seen = []

    def huge(obs):
        seen.append(obs)
        return np.full(12, 500.0)

    backend = VelocityBackend(huge, VelocityConfig(yaw_trim=False))
    s = sensors()
    s.dq[:] = 1e4  # x 0.05 = 500
    out = backend.step(s, STAND)
    assert seen[0][21:33].tolist() == [100.0] * 12
    np.testing.assert_allclose(out.action, 100.0)
    np.testing.assert_allclose(out.targets, np.array([0.0, 0.8, -1.5] * 4) + 100.0 * np.array([0.125, 0.25, 0.25] * 4))


def test_yaw_trim_by_hand():
    """Level robot turning at 0.1 rad/s while told 0: the filtered rate and the trim, two steps by hand."""
    seen = []
    backend = VelocityBackend(lambda obs: seen.append(obs.copy()) or np.zeros(12))
    level = sensors(gyro=[0.0, 0.0, 0.1], rpy=(0.0, 0.0, 1.0))
    a = 0.02 / (0.3 + 0.02)
    y1 = a * 0.1
    trim1 = 2.0 * (0.0 - y1) * 0.02
    y2 = y1 + a * (0.1 - y1)
    trim2 = trim1 + 2.0 * (0.0 - y2) * 0.02
    backend.step(level, STAND)
    backend.step(level, STAND)
    assert seen[0][8] == pytest.approx(trim1) and seen[1][8] == pytest.approx(trim2)
    assert backend.trim == pytest.approx(trim2) and trim2 < 0


@pytest.mark.parametrize("spike", [1e3, 3e38])
def test_one_implausible_gyro_sample_does_not_reach_the_yaw_trim(spike):
    """A glitched gyro (here one LowState frame) costs one step without targets, not seconds of turning.

    Without the core's check, one sample of 1e3 rad/s moves the filtered rate by 1e3 * 0.02 / 0.32 = 62.5 rad/s and
    pins the trim at its -0.6 rad/s limit until the filter has forgotten it: a standing robot told to turn (1.4 s in a
    closed-loop sketch; 27 s for 3e38).
    """
    controller = Controller(VelocityBackend(lambda obs: np.zeros(12)))
    level = quat_xyzw(0.0, 0.0, 0.0)
    controller.on_command(stand_command(), 0.0)
    for k, gyro in enumerate([0.0, spike, 0.0, 0.0]):
        now = 0.02 * k
        controller.on_joint_state(np.zeros(12), np.zeros(12), now)
        controller.on_imu(level, now, np.array([0.0, 0.0, gyro]))
        result = controller.step(now)
        if gyro == spike:
            assert result.targets is None and "implausible gyro" in result.status
        else:
            assert result.targets is not None and result.status == "ok"
        assert controller.backend.trim == 0.0 and controller.backend.yaw_rate == 0.0
    controller.on_imu(level, 0.1, np.array([0.0, 0.0, 34.0]))  # fast, but a gyro can read it: used
    controller.step(0.1)
    assert controller.backend.yaw_rate > 0.0


def test_yaw_rate_is_the_world_vertical_part_of_the_gyro():
    """Rolled by 0.5 rad, a gyro (0, 0, 1) in the trunk frame turns about the world vertical at cos(0.5)."""
    backend = VelocityBackend(lambda obs: np.zeros(12), VelocityConfig(yaw_trim_filter_s=1e-9))
    backend.step(sensors(gyro=[0.0, 0.0, 1.0], rpy=(0.5, 0.0, 0.0)), STAND)
    assert backend.yaw_rate == pytest.approx(math.cos(0.5), rel=1e-6)


def test_yaw_trim_saturates_at_its_limit():
    backend = VelocityBackend(lambda obs: np.zeros(12))
    for _ in range(2000):
        backend.step(sensors(gyro=[0.0, 0.0, 2.0], rpy=(0.0, 0.0, 0.0)), STAND)
    assert backend.trim == -0.6


def test_command_mapping_clips_and_stands():
    backend = VelocityBackend(lambda obs: np.zeros(12))
    cmd, how = backend.map_command(action_from_mapping({"vx": 3.0, "vy": -2.0, "wz": 0.5}))
    assert how == "ok" and cmd.tolist() == [1.0, -0.5, 0.5, 0.0, 0.0]
    cmd, how = backend.map_command(action_from_mapping({"vx": 0.2, "body_height": -0.22, "pitch": 0.38}))
    assert how == "ok" and cmd.tolist() == [0.2, 0.0, 0.0, -0.12, 0.38]  # body height clipped to the posture's
    cmd, how = backend.map_command(action_from_mapping({"vx": 0.8, "terminate": 1.0}))
    assert how == "terminate" and not cmd.any()
    bad = action_from_mapping({"vx": 0.8})
    bad[1] = np.nan
    cmd, how = backend.map_command(bad)
    assert how.startswith("invalid") and "vy" in how and not cmd.any()
    cmd, how = backend.map_command(np.zeros(5))
    assert how.startswith("invalid") and not cmd.any()
    assert backend.map_command(None)[1] == "none"


def test_dims_the_velocity_backend_does_not_follow():
    assert not_followed(VelocityBackend(np.zeros).followed) == (
        "gait_phase", "gait_offset", "gait_bound", "step_frequency", "stance_width", "footswing_height",
    )  # fmt: skip
    followed = VelocityBackend(np.zeros, VelocityConfig(posture=PostureConfig(enabled=False))).followed
    assert not_followed(followed) == (
        "gait_phase", "gait_offset", "gait_bound", "step_frequency", "body_height", "pitch", "stance_width",
        "footswing_height",
    )  # fmt: skip
    crawl = action_from_mapping({"vx": 0.3, "body_height": -0.15, "pitch": 0.2, "gait_offset": 0.5, "gait_phase": 0})
    assert requested_but_ignored(crawl, followed) == ("gait", "body_height", "pitch")
    assert requested_but_ignored(stand_command(), followed) == ()
    assert requested_but_ignored(action_from_mapping({"vx": 0.9, "wz": -1.0}), followed) == ()
    assert requested_but_ignored(crawl, ("vx", "vy", "wz", *not_followed(followed), "terminate")) == ()
    assert requested_but_ignored(None, followed) == ()


def test_controller_watchdogs_with_the_velocity_backend():
    backend = VelocityBackend(lambda obs: np.ones(12))
    ctl = Controller(backend, command_timeout_s=0.5, sensor_timeout_s=0.1)
    s = sensors()
    ctl.on_joint_state(s.q, s.dq, 0.0)
    ctl.on_imu(s.quaternion_xyzw, 0.0, GYRO)
    ctl.on_command(action_from_mapping({"vx": 0.5}), 0.0)
    r = ctl.step(0.0)
    assert r.status == "ok" and r.commands.tolist() == [0.5, 0.0, 0.0, 0.0, 0.0] and r.targets is not None
    np.testing.assert_allclose(r.observation[:3], GYRO * 0.25)
    r = ctl.step(0.6)  # no command for 0.6 s, sensors stale too
    assert r.targets is None and "joint states" in r.status and backend.trim == 0.0
    ctl.on_joint_state(s.q, s.dq, 0.6)
    ctl.on_imu(s.quaternion_xyzw, 0.6, GYRO)
    r = ctl.step(0.6)
    assert r.status == "command timeout: standing" and not r.commands.any() and r.targets is not None
    bad = action_from_mapping({"vx": 0.5})
    bad[0] = np.inf
    ctl.on_command(bad, 0.6)
    r = ctl.step(0.6)
    assert r.invalid_input and r.targets is not None and not r.commands.any()


def test_posture_moves_the_pose_the_policy_walks_around():
    """Crouch and pitch (nose up: clear of the floor) commanded at once: each step the pose moves by at most a
    period's rate (0.25 m/s, 1 rad/s) towards the clipped command; the policy sees q minus that pose, the levelled
    gravity and the speed capped for the crouch, and its action is added to that pose."""
    seen = []
    backend = VelocityBackend(lambda obs: seen.append(obs.copy()) or np.full(12, 0.4), VelocityConfig(yaw_trim=False))
    cmd, how = backend.map_command(action_from_mapping({"vx": 0.8, "vy": 0.6, "body_height": -0.3, "pitch": -0.35}))
    assert how == "ok" and cmd.tolist() == [0.8, 0.5, 0.0, -0.12, -0.3]
    out = backend.step(sensors(), cmd)
    np.testing.assert_allclose(out.observation[6:9], np.array([0.8, 0.5, 0.0]) * 0.3 / math.hypot(0.8, 0.5))
    pose = posture_pose(NOMINAL, -0.005, -0.02)
    scale = np.array([0.125, 0.25, 0.25] * 4)
    np.testing.assert_allclose(out.observation[9:21], Q - pose, atol=1e-12)
    np.testing.assert_allclose(out.observation[3:6], level_gravity(gravity_from_quaternion(*sensors().quaternion_xyzw),
                                                                   -0.02), atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(out.targets, pose + 0.4 * scale, atol=1e-12)
    for _ in range(40):
        out = backend.step(sensors(), cmd)
    assert (backend.posture.body_height, backend.posture.pitch) == pytest.approx((-0.12, -0.3))
    np.testing.assert_allclose(out.targets, posture_pose(NOMINAL, -0.12, -0.3) + 0.4 * scale, atol=1e-12)
    stand, how = backend.map_command(action_from_mapping({"body_height": -0.1, "terminate": 1.0}))
    assert how == "terminate" and not stand.any()  # standing is the nominal posture
    backend.step(sensors(), stand)
    assert (backend.posture.body_height, backend.posture.pitch) == pytest.approx((-0.115, -0.28))
    backend.reset()
    assert (backend.posture.body_height, backend.posture.pitch) == (0.0, 0.0)


def test_posture_off_ignores_body_height_and_pitch():
    backend = VelocityBackend(lambda obs: np.zeros(12), VelocityConfig(posture=PostureConfig(enabled=False)))
    cmd, how = backend.map_command(action_from_mapping({"vx": 0.3, "body_height": -0.15, "pitch": 0.3}))
    assert how == "ok" and cmd.tolist() == [0.3, 0.0, 0.0] and backend.posture is None
    np.testing.assert_allclose(backend.step(sensors(), cmd).targets, NOMINAL)


def test_onnx_runner_checks_shapes_and_files(tmp_path, affine):
    _, w, b = affine
    with pytest.raises(PolicyLoadError, match="12 actions"):
        OnnxPolicy(write_affine_onnx(tmp_path / "seven.onnx", w[:, :7], b[:7]))
    with pytest.raises(PolicyLoadError, match=r"\[1, 45\]"):
        OnnxPolicy(write_affine_onnx(tmp_path / "forty.onnx", w[:40], b))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PolicyLoadError, match="cannot load") as err:
        OnnxPolicy(tmp_path / "junk.onnx")
    assert "\n" not in str(err.value)
    with pytest.raises(PolicyLoadError, match="does not exist"):
        OnnxPolicy(tmp_path / "missing.onnx")


def test_bundled_policy_loads_and_is_deterministic():
    policy = OnnxPolicy()
    assert policy.source.endswith("policy.onnx")
    obs = np.linspace(-1, 1, 45)
    a1, a2 = policy(obs), policy(obs)
    assert a1.shape == (12,) and np.isfinite(a1).all() and np.array_equal(a1, a2)


def test_config_yaml_and_errors(tmp_path):
    p = tmp_path / "velocity.yaml"
    p.write_text("ranges:\n  vx: [-0.5, 1.5]\nyaw_trim: false\n")
    cfg = load_velocity_config(p)
    assert cfg.ranges.vx == (-0.5, 1.5) and not cfg.yaw_trim and cfg.ranges.vy == (-0.5, 0.5)
    p.write_text("posture:\n  enabled: false\n")
    assert not load_velocity_config(p).posture.enabled
    p.write_text("posture:\n  body_height: [-0.5, 0.0]\n")
    with pytest.raises(ValueError, match=r"posture\.body_height low -0.5"):
        load_velocity_config(p)
    p.write_text("posture:\n  body_height: [-0.1, 0.05]\n  pitch: [-0.45, 0.45]\n")
    with pytest.raises(ValueError, match=r"posture body height 0.05 m with pitch -0.45 rad: foot at .* out of the leg"):
        load_velocity_config(p)  # straight legs raised and pitched: a rear/front foot out of reach
    p.write_text("kp: -1.0\n")
    with pytest.raises(ValueError, match="kp"):
        load_velocity_config(p)
    with pytest.raises(ValueError, match=r"ranges\.wz"):
        VelocityRanges(wz=(0.2, 1.0))
