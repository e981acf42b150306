"""The Go2 physics body: Menagerie model in SDK order, PD + torque lag by hand, sensors, worlds, camera mount."""

import math

import mujoco
import numpy as np
import pytest

from more_common.errors import ConfigurationError
from more_sim.go2 import JOINT_NAMES, CameraMount, Go2Body, MotorCommand, build_model

# Go2 facts (Unitree's published limits and masses), SDK order FR, FL, RR, RL x hip, thigh, calf
HIP, THIGH_F, THIGH_R, CALF = (-1.0472, 1.0472), (-1.5708, 3.4907), (-0.5236, 4.5379), (-2.7227, -0.83776)
Q_LIMITS = [HIP, THIGH_F, CALF, HIP, THIGH_F, CALF, HIP, THIGH_R, CALF, HIP, THIGH_R, CALF]
TORQUE_LIMITS = [23.7, 23.7, 45.43] * 4
STAND = np.array([0.0, 0.8, -1.5] * 4)


@pytest.fixture(scope="module")
def body():
    return Go2Body()


def test_model_in_sdk_order_with_go2_limits_and_mass(body):
    assert JOINT_NAMES[:3] == ("FR_hip_joint", "FR_thigh_joint", "FR_calf_joint")
    assert JOINT_NAMES[9:] == ("RL_hip_joint", "RL_thigh_joint", "RL_calf_joint")
    np.testing.assert_allclose(np.stack([body.q_min, body.q_max], 1), Q_LIMITS, atol=1e-6)
    np.testing.assert_allclose(body.torque_max, TORQUE_LIMITS)
    assert math.isclose(body.model.body_mass.sum(), 6.921 + 4 * (0.678 + 1.152 + 0.241352), rel_tol=1e-6)


@pytest.mark.parametrize("hip,thigh,calf", [(0.0, 0.0, -0.9), (0.3, 0.8, -1.5), (-0.5, 1.2, -2.5)])
def test_each_sdk_index_moves_its_own_foot(body, hip, thigh, calf):
    """Foot centres against the closed form of the Go2's leg (hip x-axis, thigh/calf y-axis, 0.213 m links)."""
    body.reset(np.tile([hip, thigh, calf], 4))
    d = body.data
    d.qpos[body._base_q : body._base_q + 7] = [0, 0, 0, 1, 0, 0, 0]
    mujoco.mj_kinematics(body.model, d)
    for k, leg in enumerate(("FR", "FL", "RR", "RL")):
        sx, sy = (1 if leg[0] == "F" else -1), (1 if leg[1] == "L" else -1)
        # Menagerie's foot sphere sits at (-0.002, 0, -0.213) in the calf frame
        x = -0.213 * math.sin(thigh) - 0.213 * math.sin(thigh + calf) - 0.002 * math.cos(thigh + calf)
        z = -0.213 * math.cos(thigh) - 0.213 * math.cos(thigh + calf) + 0.002 * math.sin(thigh + calf)
        ch, sh = math.cos(hip), math.sin(hip)
        expected = [sx * 0.1934 + x, sy * 0.0465 + sy * 0.0955 * ch - z * sh, sy * 0.0955 * sh + z * ch]
        np.testing.assert_allclose(d.geom_xpos[body.feet[k]], expected, atol=1e-9, err_msg=leg)


def test_reset_puts_the_lowest_foot_on_the_floor(body):
    body.reset(STAND, xy=(1.0, -2.0), yaw=0.5)
    lowest = body.data.geom_xpos[body.feet, 2].min() - 0.022
    assert abs(lowest) < 1e-9 and body.time == 0.0
    np.testing.assert_allclose(body.base_position[:2], [1.0, -2.0])
    assert body.base_rpy()[2] == pytest.approx(0.5)


def test_pd_law_and_first_order_lag_by_hand():
    body = Go2Body(actuator_lag_s=0.015)
    body.reset(STAND)
    q0, dq0 = body.q, body.dq
    q_des, kp, kd = STAND + 0.05, np.full(12, 20.0), np.full(12, 0.5)
    tau_ff = np.linspace(-1.0, 1.0, 12)
    body.set_command(MotorCommand(q=q_des, dq=np.zeros(12), kp=kp, kd=kd, tau=tau_ff))
    wanted = kp * (q_des - q0) + kd * (0 - dq0) + tau_ff
    np.testing.assert_allclose(body.motor_torque(), wanted, atol=1e-12)
    body.step()
    alpha = 1 - math.exp(-0.002 / 0.015)
    np.testing.assert_allclose(body.applied, alpha * wanted, atol=1e-12)


def test_lag_step_response_and_torque_limit():
    """A constant feed-forward torque: applied = tau (1 - exp(-t / 15 ms)); a huge one stops at the motor limit."""
    body = Go2Body(actuator_lag_s=0.015)
    body.reset(STAND)
    tau = np.full(12, 2.0)
    body.set_command(MotorCommand(tau=tau))
    body.step(round(0.015 / 0.002) - 1)  # 7 steps: 14 ms, (1 - alpha)^7 = exp(-14/15)
    np.testing.assert_allclose(body.applied, 2.0 * (1 - math.exp(-0.014 / 0.015)), rtol=1e-9)
    body.set_command(MotorCommand(tau=np.full(12, 1e3)))
    body.step(300)  # 0.6 s = 40 lag constants
    np.testing.assert_allclose(body.applied, TORQUE_LIMITS, rtol=1e-6)


def test_no_lag_applies_the_torque_at_once():
    body = Go2Body(actuator_lag_s=0.0)
    body.reset(STAND)
    body.set_command(MotorCommand(tau=np.full(12, -3.0)))
    body.step()
    np.testing.assert_allclose(body.applied, -3.0)


def test_motor_command_rejects_bad_values():
    with pytest.raises(ValueError, match="kp"):
        MotorCommand(kp=np.full(11, 1.0))
    with pytest.raises(ValueError, match="non-finite"):
        MotorCommand(q=np.full(12, np.nan))


def test_standing_under_pd_imu_and_contacts():
    """Held in the stand pose (kp 50): level, all feet loaded with the weight, accelerometer reads +g."""
    body = Go2Body()
    body.reset(STAND)
    body.set_command(MotorCommand.pd(STAND, kp=50.0, kd=3.0))
    body.step(500)
    forces = body.foot_forces()
    assert math.isclose(forces.sum(), body.model.body_mass.sum() * 9.81, rel_tol=0.02)
    assert body.foot_contacts().all()
    np.testing.assert_allclose(body.accelerometer, [0, 0, 9.81], atol=0.3)
    np.testing.assert_allclose(body.gyroscope, 0, atol=0.02)
    # the IMU site is not rotated against the trunk (sensors are read before the step's integration: 1e-5 slack)
    np.testing.assert_allclose(body.imu_quaternion_wxyz, body.base_quaternion_wxyz, atol=1e-5)
    assert body.tilt() < 0.05 and 0.25 < body.base_position[2] < 0.34


def test_push_and_heading_frame_velocity():
    body = Go2Body()
    body.reset(STAND, yaw=math.pi / 2)
    body.push(linear=(0.0, 1.0, 0.0), angular=(0.0, 0.0, 0.7))
    np.testing.assert_allclose(body.gyroscope, [0, 0, 0.7], atol=1e-9)
    # facing +y: a world +y velocity is forward
    np.testing.assert_allclose(body.body_velocity(), [1.0, 0.0, 0.7], atol=1e-9)


def test_world_fragment_is_kept_and_collides():
    world = """<mujoco><worldbody>
      <geom name="floor" type="plane" size="0 0 1"/>
      <geom name="platform" type="box" size="1 1 0.1" pos="0 0 0.1"/>
    </worldbody></mujoco>"""
    body = Go2Body(world_xml=world)
    assert body.model.geom("platform").id >= 0 and not body.robot_touches(body.model.geom("platform").id)
    assert body.robot_touches(int(body.feet[0]))
    body.reset(STAND, floor_z=0.2)
    body.set_command(MotorCommand.pd(STAND, kp=50.0, kd=3.0))
    body.step(500)
    assert 0.2 + 0.25 < body.base_position[2] < 0.2 + 0.34  # standing on the platform, not sunk through it


def test_bad_world_and_timestep_named():
    with pytest.raises(ConfigurationError, match="world MJCF"):
        build_model("<mujoco><worldbody><geom type='nonsense'/></worldbody></mujoco>")
    with pytest.raises(ValueError, match="timestep"):
        build_model(timestep=0.0)
    with pytest.raises(ValueError, match="actuator_lag_s"):
        Go2Body(actuator_lag_s=-1.0)


def test_head_camera_looks_forward_tilted_down():
    mount = CameraMount(pos=(0.28, 0.0, 0.06), tilt_rad=0.2)
    body = Go2Body(camera=mount)
    body.reset(STAND)
    d = body.data
    mujoco.mj_forward(body.model, d)
    np.testing.assert_allclose(d.cam_xpos[body.camera_id], body.base_position + np.array([0.28, 0.0, 0.06]), atol=1e-9)
    view = -d.cam_xmat[body.camera_id].reshape(3, 3)[:, 2]  # MuJoCo cameras look along -z
    np.testing.assert_allclose(view, [math.cos(0.2), 0.0, -math.sin(0.2)], atol=1e-9)
