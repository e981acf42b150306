"""ROS shell around the kinematic base: QuadrupedCommand in, nav_msgs/Odometry out.

A command older than `command_timeout_s` is replaced by the stop command, so the simulated base
stops as the real controller's watchdog would make the robot stop.
"""

from __future__ import annotations

import math
import time

from rclpy.node import Node

from more_common.action_contract import InvalidActionError, stand_command
from more_ros.convert import msg_to_command
from more_ros.names import BASE_FRAME, COMMAND, ODOM_FRAME, SIM_ODOM
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, positive
from more_sim.base_tracker import BaseState, TrackerConfig, step_base

NODE_NAME = "base_sim"


class BaseSimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from nav_msgs.msg import Odometry

        from more_msgs.msg import QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, OVERRIDABLE, SENSOR_QOS

        p = declare_parameters(
            self,
            {
                "rate_hz": (50.0, positive, "simulation and odometry rate [Hz], > 0"),
                "command_timeout_s": (0.5, positive, "stop when the last command is older than this [s], > 0"),
                "time_constant_s": (0.25, positive, "first-order lag of the base [s], > 0"),
            },
        )
        self._config = TrackerConfig(time_constant_s=p["time_constant_s"])
        self._timeout = p["command_timeout_s"]
        self._dt = 1.0 / p["rate_hz"]
        self._state = BaseState()
        self._command = stand_command()
        self._last_command_time = -math.inf
        self.commands_received = 0
        self._odom_type = Odometry
        self._odom_pub = self.create_publisher(Odometry, SIM_ODOM, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self.create_subscription(
            QuadrupedCommand, COMMAND, self._on_command, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_timer(self._dt, self._tick)

    def _on_command(self, msg) -> None:  # noqa: ANN001
        try:
            command = msg_to_command(msg)
            self._config.spec.clip(command)  # raises on NaN/inf
        except InvalidActionError as err:
            self.get_logger().error(f"rejected command: {err}; stopping")
            command = stand_command()
        self._command = command
        self._last_command_time = time.monotonic()
        self.commands_received += 1

    def _tick(self) -> None:
        fresh = time.monotonic() - self._last_command_time <= self._timeout
        self._state = step_base(self._state, self._command if fresh else stand_command(), self._dt, self._config)
        self._odom_pub.publish(self._odometry())

    def _odometry(self):
        s = self._state
        msg = self._odom_type()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = ODOM_FRAME
        msg.child_frame_id = BASE_FRAME
        msg.pose.pose.position.x, msg.pose.pose.position.y = s.x, s.y
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(s.yaw / 2), math.cos(s.yaw / 2)
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = s.vx, s.vy
        msg.twist.twist.angular.z = s.wz
        return msg

    @property
    def state(self) -> BaseState:
        return self._state


def main(args: list[str] | None = None) -> int:
    return run_node(BaseSimNode, "base_sim_node", __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
