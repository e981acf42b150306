"""Posture by leg inverse kinematics (posture.py): hand-derived forward kinematics, inverse kinematics against it,
feet that stay put, gravity levelling, the rate limit and the trunk's floor clearance (against a brute-force
rotation of its low points). The Menagerie model's own kinematics check the
geometry in src/more_sim/test/go2/test_posture_model.py."""

import math

import numpy as np
import pytest

from wtw_controller.posture import (
    GO2,
    GO2_TRUNK,
    Posture,
    PostureConfig,
    allowed_pitch,
    foot_position,
    leg_angles,
    level_gravity,
    posture_pose,
    trunk_clearance,
)
from wtw_controller.velocity import DEFAULT_POSE_SDK

NOMINAL = np.array(DEFAULT_POSE_SDK)


def test_foot_of_the_default_pose_by_hand():
    # x = -0.213 (sin 0.8 + sin(-0.7)) = -0.213 (0.717356 - 0.644218); z = -0.213 (cos 0.8 + cos 0.7)
    x, z = foot_position(0.8, -1.5)
    assert x == pytest.approx(-0.213 * (0.7173561 - 0.6442177), abs=1e-6)
    assert z == pytest.approx(-0.213 * (0.6967067 + 0.7648422), abs=1e-6)
    # straight leg hanging down, and folded flat: the foot back at the hip
    assert foot_position(0.0, 0.0) == pytest.approx((0.0, -0.426))
    assert foot_position(0.3, -math.pi) == pytest.approx((0.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("thigh", np.linspace(-0.5, 1.6, 8))
@pytest.mark.parametrize("calf", np.linspace(-2.6, -0.2, 7))
def test_leg_angles_invert_foot_position(thigh, calf):
    x, z = foot_position(thigh, calf)
    assert leg_angles(x, z) == pytest.approx((thigh, calf), abs=1e-9)


def test_out_of_reach_is_refused():
    with pytest.raises(ValueError, match="out of the leg's reach"):
        leg_angles(0.0, -0.43)


def test_no_posture_is_the_default_pose():
    np.testing.assert_allclose(posture_pose(NOMINAL, 0.0, 0.0), NOMINAL, atol=1e-12)


def _feet_in_nominal_frame(pose, body_height, pitch):
    """Each foot's (x, z) in the nominal trunk frame: the moved, pitched trunk's feet rotated back."""
    c, s = math.cos(pitch), math.sin(pitch)
    out = []
    for i in range(4):
        hip_x = GO2.hip_x if i < 2 else -GO2.hip_x
        fx, fz = foot_position(pose[3 * i + 1], pose[3 * i + 2])
        bx, bz = hip_x + fx, fz  # trunk frame
        out.append((c * bx + s * bz, -s * bx + c * bz + body_height))  # R_y(pitch) (bx, bz) + centre
    return np.array(out)


@pytest.mark.parametrize(("body_height", "pitch"), [(-0.16, 0.0), (0.0, 0.38), (-0.08, -0.25), (0.04, 0.1)])
def test_feet_stay_where_the_nominal_pose_has_them(body_height, pitch):
    pose = posture_pose(NOMINAL, body_height, pitch)
    np.testing.assert_allclose(_feet_in_nominal_frame(pose, body_height, pitch), _feet_in_nominal_frame(NOMINAL, 0, 0),
                               atol=1e-9)  # fmt: skip
    assert np.array_equal(pose[0::3], NOMINAL[0::3])  # hips untouched


def test_crouching_bends_the_knees_and_pitching_shortens_the_front_legs():
    crouch = posture_pose(NOMINAL, -0.1, 0.0)
    assert (crouch[2::3] < NOMINAL[2::3]).all() and (crouch[1::3] > NOMINAL[1::3]).all()
    nose_down = posture_pose(NOMINAL, 0.0, 0.3)
    assert (nose_down[[2, 5]] < NOMINAL[[2, 5]]).all() and (nose_down[[8, 11]] > NOMINAL[[8, 11]]).all()


@pytest.mark.parametrize("pitch", [-0.3, 0.0, 0.25, 0.4])
def test_level_gravity_undoes_the_pitch(pitch):
    measured = np.array([math.sin(pitch), 0.0, -math.cos(pitch)])  # R_y(pitch)^T (0, 0, -1), nose down +
    np.testing.assert_allclose(level_gravity(measured, pitch), [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(level_gravity(measured, 0.0), measured)


def test_posture_ramps_at_its_rates_and_clips_to_its_ranges():
    p = Posture(PostureConfig(body_height_rate=0.25, pitch_rate=1.0), NOMINAL)
    for _ in range(10):
        pose = p.step(-0.22, -0.5, 0.02)  # both beyond the ranges (-0.12, -0.3); nose up keeps the chin clear
    assert p.body_height == pytest.approx(-0.05) and p.pitch == pytest.approx(-0.2)
    np.testing.assert_allclose(pose, posture_pose(NOMINAL, -0.05, -0.2))
    for _ in range(40):
        p.step(-0.22, -0.5, 0.02)
    assert (p.body_height, p.pitch) == pytest.approx((-0.12, -0.3))
    steady = p.pose
    assert p.step(-0.3, -0.45, 0.02) is steady  # clipped to where it is: no inverse kinematics
    p.step(0.0, 0.0, 0.02)
    assert (p.body_height, p.pitch) == pytest.approx((-0.115, -0.28))
    assert p.limited_steps == 0  # nothing here came near the floor
    p.reset()
    assert (p.body_height, p.pitch) == (0.0, 0.0) and np.array_equal(p.pose, NOMINAL)


def test_speed_cap_by_hand():
    """No cap above -0.04 m, 0.3 m/s from -0.12 m down, linear from 1 m/s between; the lower of the commanded and
    the current height counts."""
    p = Posture(PostureConfig(), NOMINAL)
    assert p.speed_limit(0.0) == math.inf and p.speed_limit(-0.04) == math.inf
    assert p.speed_limit(-0.08) == pytest.approx(0.65)  # halfway: 1 + 0.5 (0.3 - 1)
    assert p.speed_limit(-0.12) == pytest.approx(0.3) and p.speed_limit(-0.5) == pytest.approx(0.3)
    for _ in range(40):
        p.step(-0.2, 0.0, 0.02)
    assert p.speed_limit(0.0) == pytest.approx(0.3)  # told to stand up, still crouched


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body_height": (0.01, 0.02)}, "posture.body_height must be finite with low <= 0 <= high"),
        ({"body_height": (-0.3, 0.0)}, "posture.body_height low -0.3 is below -0.2 m"),
        ({"body_height": (-0.1, 0.1)}, "posture.body_height high 0.1 is above 0.05 m"),
        ({"pitch": (-0.5, 0.3)}, "posture.pitch [-0.5, 0.3] is outside"),
        ({"pitch": (math.nan, 0.3)}, "posture.pitch must be finite"),
        ({"pitch_rate": 0.0}, "posture.pitch_rate must be finite and > 0"),
        ({"crouched_speed": -1.0}, "posture.crouched_speed must be finite and > 0"),
        ({"crouched_height": -0.02}, "posture needs crouched_height < upright_height <= 0"),
    ],
)
def test_config_errors_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PostureConfig(**fields)


def lowest_point_brute_force(body_height, pitch):
    """The trunk's low points rotated by a rotation matrix (nose down: +pitch about +y) and moved to the trunk's
    height; the lowest sphere bottom or edge above the floor."""
    c, s = math.cos(pitch), math.sin(pitch)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # R_y(pitch)
    centre = np.array([0.0, 0.0, 0.29 + body_height])
    heights = [(centre + rotation @ np.array([x, 0.0, z]))[2] - r for x, z, r in GO2_TRUNK.low_points]
    return min(heights)


def test_trunk_clearance_by_hand_and_against_the_rotated_points():
    # level: the chin sphere's bottom, 0.29 - 0.06 - 0.047; the rear edge is at 0.29 - 0.057
    assert trunk_clearance(0.0, 0.0) == pytest.approx(0.183)
    # nose down 0.4: the chin's centre at 0.29 - 0.06 cos 0.4 - 0.293 sin 0.4 = 0.29 - 0.055264 - 0.114100
    assert trunk_clearance(0.0, 0.4) == pytest.approx(0.29 - 0.0552636 - 0.1140996 - 0.047, abs=1e-6)
    for h in np.linspace(-0.2, 0.05, 11):
        for p in np.linspace(-0.6, 0.6, 13):
            assert trunk_clearance(h, p) == pytest.approx(lowest_point_brute_force(h, p), abs=1e-12)


@pytest.mark.parametrize("clearance", [0.0, 0.04, 0.08])
@pytest.mark.parametrize("body_height", [0.0, -0.05, -0.1, -0.12, -0.15])
def test_allowed_pitch_is_the_interval_the_brute_force_finds(body_height, clearance):
    grid = np.linspace(-1.2, 1.2, 24001)  # 0.1 mrad
    ok = grid[[lowest_point_brute_force(body_height, p) >= clearance for p in grid]]
    low, high = allowed_pitch(body_height, clearance)
    if ok.size == 0:
        assert low > high
        return
    assert np.all(np.diff(ok) < 2e-4)  # one interval
    assert max(low, -1.2) == pytest.approx(ok[0], abs=2e-4) and min(high, 1.2) == pytest.approx(ok[-1], abs=2e-4)


def test_a_crouch_keeps_its_height_and_gets_the_pitch_that_clears_the_floor():
    p = Posture(PostureConfig(), NOMINAL)  # min_clearance 0.04
    assert p.clip(0.0, 0.4) == (0.0, 0.4)  # each alone is clear
    assert p.clip(-0.12, 0.0) == (-0.12, 0.0)
    assert p.clip(-0.05, 0.3) == (-0.05, 0.3)
    h, pitch = p.clip(-0.1, 0.3)  # the chin would be at -0.001 m (in simulation: on the floor)
    assert h == -0.1 and lowest_point_brute_force(h, pitch) == pytest.approx(0.04, abs=1e-9) and 0.1 < pitch < 0.2
    h, pitch = p.clip(-0.12, 0.4)
    assert h == -0.12 and lowest_point_brute_force(h, pitch) == pytest.approx(0.04, abs=1e-9)
    assert p.clip(-0.12, -0.3) == (-0.12, -0.3)  # nose up: the rear edge is clear too
    low = Posture(PostureConfig(body_height=(-0.2, 0.0), min_clearance=0.08), NOMINAL)
    h, pitch = low.clip(-0.2, 0.0)  # lower than the level trunk clears: the height stops where it does
    assert pitch == 0.0 and lowest_point_brute_force(h, 0.0) == pytest.approx(0.08) and h > -0.2


def test_every_step_keeps_the_clearance_and_reaches_the_clipped_command():
    """Random posture commands held for random times: no step leaves the clearance, each command is reached."""
    rng = np.random.default_rng(0)
    config = PostureConfig()
    p = Posture(config, NOMINAL)
    limited = 0
    for _ in range(200):
        command = (rng.uniform(-0.2, 0.05), rng.uniform(-0.5, 0.5))
        target = p.clip(*command)
        limited += target != (float(np.clip(command[0], -0.12, 0.0)), float(np.clip(command[1], -0.3, 0.4)))
        for _ in range(rng.integers(1, 60)):
            p.step(*command, 0.02)
            assert lowest_point_brute_force(p.body_height, p.pitch) >= config.min_clearance - 1e-9
        for _ in range(60):  # 1.2 s: enough for any move at 0.25 m/s and 1 rad/s
            p.step(*command, 0.02)
        assert (p.body_height, p.pitch) == pytest.approx(target, abs=1e-12)
    assert limited > 20 and p.limited_steps > limited  # the clearance cut some commands, on every step they held
