"""Conversions between ROS messages and the bridge's plain data (imports ROS message types lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np

from go2_bridge.go2 import JOINT_NAMES, LEGS
from go2_bridge.lowstate import RobotState
from go2_bridge.safety import JointTargetsData


def targets_from_msg(msg: Any) -> JointTargetsData:
    """more_msgs/JointTargets -> JointTargetsData (shapes are checked by JointTargetsData.finite)."""
    return JointTargetsData(
        position=np.asarray(msg.position, dtype=np.float64).reshape(-1),
        velocity=np.asarray(msg.velocity, dtype=np.float64).reshape(-1),
        kp=np.asarray(msg.kp, dtype=np.float64).reshape(-1),
        kd=np.asarray(msg.kd, dtype=np.float64).reshape(-1),
        torque_ff=np.asarray(msg.torque_ff, dtype=np.float64).reshape(-1),
    )


def joint_state_msg(state: RobotState, stamp: Any) -> Any:
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(JOINT_NAMES)
    msg.position = state.q.tolist()
    msg.velocity = state.dq.tolist()
    msg.effort = state.tau_est.tolist()
    return msg


def imu_msg(state: RobotState, stamp: Any, frame_id: str, accelerometer_ok: bool = True) -> Any:
    """The Imu of a state whose orientation and gyro are usable (inputs.Publishable.imu): orientation
    normalised; without a finite accelerometer, linear acceleration is zero with covariance[0] = -1
    (sensor_msgs/Imu's "no estimate"), so no NaN ever leaves the bridge."""
    from sensor_msgs.msg import Imu

    msg = Imu()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    q = np.asarray(state.quaternion_wxyz, dtype=np.float64)
    w, x, y, z = (float(v) for v in q / np.linalg.norm(q))
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = x, y, z, w
    g = state.gyroscope
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(v) for v in g)
    if accelerometer_ok:
        a = state.accelerometer
        msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = (float(v) for v in a)
    else:
        msg.linear_acceleration_covariance[0] = -1.0
    return msg


def contacts_msg(contacts: np.ndarray) -> Any:
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension

    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=",".join(LEGS), size=4, stride=4)]
    msg.data = [float(c) for c in contacts]
    return msg
