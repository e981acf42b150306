"""The six-task world around the physics Go2: things collide where their geometry says, the D435 on the head sees
what is ahead and never the robot, the tasks' state is the true trunk pose, falls are detected."""

import math

import mujoco
import numpy as np
import pytest

from more_sim.go2 import MotorCommand
from more_sim.go2.world import D435_MOUNT, FALL_TILT_RAD, STAND_JOINT_POS, Go2World, horizontal_fov_deg, pose_state
from more_sim.world import NOMINAL_BASE_HEIGHT, Thing

STAND = STAND_JOINT_POS
TRUNK_HALF_HEIGHT = 0.057  # Menagerie's trunk collision box (0.1881 x 0.04675 x 0.057 half sizes)


@pytest.fixture(scope="module")
def world():
    w = Go2World(64, 96)
    yield w
    w.close()


def settle(world, seconds=0.2):
    world.body.step(round(seconds / world.body.timestep))


def test_d435_field_of_view_by_hand():
    # tan(21 deg) = 0.383864; 16:9 -> 2 atan(1.77778 x 0.383864) = 68.63 deg, the D435's 69 x 42
    assert horizontal_fov_deg(1080, 1920) == pytest.approx(2 * math.degrees(math.atan(16 / 9 * 0.383864)), abs=1e-3)
    assert horizontal_fov_deg(1080, 1920) == pytest.approx(68.62, abs=0.01)
    # 4:3: 2 atan(1.33333 x 0.383864) = 2 atan(0.511819) = 54.21; 3:2: 2 atan(0.575796) = 59.87
    assert horizontal_fov_deg(480, 640) == pytest.approx(54.21, abs=0.01)  # the robot's 640 x 480 stream
    assert horizontal_fov_deg(64, 96) == pytest.approx(59.87, abs=0.01)  # models/demo's input
    assert horizontal_fov_deg(96, 96) == pytest.approx(42.0)


def test_camera_on_the_head_looks_ahead_tilted_down(world):
    world.set_things(())
    world.place(1.0, 2.0, 0.7)
    d = world.data
    mujoco.mj_forward(world.model, d)
    cam = world.model.camera("go2/d435").id
    r = world.body.base_rotation
    np.testing.assert_allclose(d.cam_xpos[cam], world.body.base_position + r @ np.array(D435_MOUNT.pos), atol=1e-9)
    view = -d.cam_xmat[cam].reshape(3, 3)[:, 2]
    expected = r @ np.array([math.cos(0.2), 0.0, -math.sin(0.2)])
    np.testing.assert_allclose(view, expected, atol=1e-9)
    assert world.model.cam_fovy[cam] == pytest.approx(42.0)


def _red_centroid(image):
    image = image.astype(int)
    red = image[..., 0] - np.maximum(image[..., 1], image[..., 2]) > 30  # lit and shaded sides alike
    rows, cols = np.nonzero(red)
    return red.sum(), cols.mean(), rows.mean()


@pytest.mark.parametrize("yaw", [0.0, 0.35])
def test_a_ball_appears_where_a_pinhole_d435_puts_it(world, yaw):
    """The ball's image centroid against a pinhole projection of its centre (square pixels, vertical 42 degrees,
    the camera's pose from the mount), within 1.5 px."""
    world.set_things((Thing("t", "ball", 3.0, 0.0, colour="red"),))
    world.place(0.0, 0.0, yaw)
    count, u, v = _red_centroid(world.render_head())
    assert count > 20
    d = world.data
    cam = world.model.camera("go2/d435").id
    axes = d.cam_xmat[cam].reshape(3, 3)  # columns: camera x (right), y (up), z (backwards)
    p = axes.T @ (np.array([3.0, 0.0, 0.2]) - d.cam_xpos[cam])
    f = (64 / 2) / math.tan(math.radians(42.0 / 2))
    u_expected = (96 - 1) / 2 + f * p[0] / -p[2]
    v_expected = (64 - 1) / 2 - f * p[1] / -p[2]
    assert u == pytest.approx(u_expected, abs=1.5) and v == pytest.approx(v_expected, abs=1.5)
    if yaw:  # turned left, the ball sits right of the centre
        assert u > (96 - 1) / 2 + 20


def test_the_robot_never_sees_itself(world):
    """Legs folded up in front of the head camera: the image equals one with every robot geom transparent."""
    world.set_things((Thing("t", "cube", 2.0, 0.0, colour="blue"),))
    world.place(0.0, 0.0, 0.0, joint_pos=(0.0, -1.5, -0.9) * 4)  # thighs swung forward and up
    seen = world.render_head()
    m = world.model
    rgba = m.geom_rgba.copy()
    robot = [g for g in range(m.ngeom) if world.body.robot_touches(g)]
    m.geom_rgba[robot, 3] = 0.0
    try:
        empty = world.render_head()
    finally:
        m.geom_rgba[:] = rgba
    np.testing.assert_array_equal(seen, empty)
    assert world.render_view().std() > 0  # the third-person view does show it (and renders)


@pytest.mark.parametrize(
    "bar_height,touches",
    [
        (NOMINAL_BASE_HEIGHT + TRUNK_HALF_HEIGHT - 0.04, True),  # lower edge under the trunk's top: collision
        (NOMINAL_BASE_HEIGHT + TRUNK_HALF_HEIGHT + 0.08, False),  # above the trunk and the head: free
    ],
)
def test_a_bar_touches_the_trunk_only_below_its_top(world, bar_height, touches):
    """The pooled bar is resized per episode; collisions follow its new size and height."""
    bar = Thing("bar", "bar", 0.0, 0.0, yaw=0.0, colour="yellow", width=1.0, height=bar_height)
    world.body.reset()  # also parks the pool: things go in after it
    world.set_things((bar,))
    world.place(0.0, 0.0, 0.0)
    world.body.set_command(MotorCommand.pd(np.array(STAND), kp=50.0, kd=3.0))
    settle(world, 0.1)
    trunk_top = world.body.base_position[2] + TRUNK_HALF_HEIGHT
    assert bool(bar_height < trunk_top) is touches
    assert world.touched() == ("bar" if touches else "")


def test_walking_into_a_box_is_a_named_contact(world):
    """A cube of 0.4 m ahead, the robot shoved towards it: the first contact names the thing."""
    world.body.reset()
    world.set_things((Thing("crate", "crate", 0.75, 0.0, colour="brown"),))
    world.place(0.0, 0.0, 0.0)
    assert world.touched() == ""
    world.body.push(linear=(2.0, 0.0, 0.0))
    names = set()
    for _ in range(300):
        world.body.step(1)
        names.add(world.touched())
    assert "crate" in names


def test_pose_state_is_the_trunk_pose_with_nose_down_pitch():
    yaw, pitch = 0.4, 0.3
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    # R = Rz(yaw) Ry(pitch): positive rotation about y tips the nose (x axis) down
    r = np.array([[cy * cp, -sy, cy * sp], [sy * cp, cy, sy * sp], [-sp, 0.0, cp]])
    assert r[2, 0] < 0  # the nose points below the horizon
    s = pose_state(np.array([1.0, 2.0, 0.25]), r, (0.1, 0.2, 0.3))
    assert (s.x, s.y, s.vx, s.vy, s.wz) == (1.0, 2.0, 0.1, 0.2, 0.3)
    assert s.yaw == pytest.approx(yaw) and s.pitch == pytest.approx(pitch)
    assert s.body_height == pytest.approx(0.25 - NOMINAL_BASE_HEIGHT)


def test_standing_is_not_a_fall_collapsing_and_tipping_are(world):
    world.body.reset()
    world.set_things(())
    world.place(0.0, 0.0, 0.0)
    world.body.set_command(MotorCommand.pd(np.array(STAND), kp=50.0, kd=3.0))
    for _ in range(250):  # 0.5 s held up
        world.body.step(1)
        assert not world.fallen()
    world.body.set_command(MotorCommand())  # motors off: the legs give way, the trunk comes down on the floor
    for _ in range(1000):
        world.body.step(1)
        if world.fallen():
            break
    assert world.fallen() and world.body.tilt() < FALL_TILT_RAD  # by the trunk touching the floor
    assert world.body.base_position[2] < 0.2  # (standing: ~0.30 m)
    # rolled past the bridge's limit in the air: a fall by tilt alone
    world.place(0.0, 0.0, 0.0)
    q = world.body._base_q
    world.data.qpos[q + 2] += 0.5
    world.data.qpos[q + 3 : q + 7] = [math.cos(0.45), math.sin(0.45), 0.0, 0.0]  # roll 0.9 rad
    mujoco.mj_forward(world.model, world.data)
    assert world.body.tilt() == pytest.approx(0.9) and world.fallen()


def test_the_head_camera_renders_without_mujoco_gl_set():
    # MuJoCo chooses its OpenGL platform at import: importing the go2 world first (not scene.py) must still get
    # the package's headless default, or the first render fails (`more-sim eval --embodiment go2` did)
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    code = "from more_sim.go2.world import Go2World; w = Go2World(32, 48); print(w.render_head().shape); w.close()"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "(32, 48, 3)"
