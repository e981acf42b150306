"""ROS 2 shell around the six-task simulator: QuadrupedCommand in; camera, episode status and pose out.

Each timer tick (at the decision rate `rate_hz`) steps one decision with the newest command (the
stand command if none arrived within `command_timeout_s`) and publishes:
- the front camera as sensor_msgs/Image rgb8 on the realsense-ros topic, frame
  camera_color_optical_frame, sensor-data QoS, plus its CameraInfo (pinhole from the field of view);
- more_msgs/EpisodeStatus (task, instruction, episode, step, terminated/truncated/success, reward);
- nav_msgs/Odometry of the trunk (odom -> base_link);
- the episode's instruction on the instruction topic (latched), whenever an episode starts.
Episodes follow each other (seed, seed + 1, ...); the std_srvs/Trigger service SIM_RESET starts the
next one at once. Parameters: task, split, seed, instruction (overrides the sampled one), rate_hz,
image_width, image_height, command_timeout_s, reset_delay_s, auto_reset.
"""

from __future__ import annotations

import time

from rclpy.node import Node

from more_common.action_contract import InvalidActionError
from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.convert import msg_to_command, stamp_to_ns
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive
from more_sim.config import SimConfig
from more_sim.session import SimSession, TickResult, base_pose, camera_matrix
from more_sim.splits import SPLITS, TASKS

NODE_NAME = "more_sim"


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from more_msgs.msg import EpisodeStatus, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, OVERRIDABLE, SENSOR_QOS, STATUS_QOS

        p = declare_parameters(
            self,
            {
                "task": ("go_to", lambda v: v in (*TASKS, "all"), f"one of {[*TASKS, 'all']}"),
                "split": ("id", lambda v: v in SPLITS, f"one of {list(SPLITS)}"),
                "seed": (0, non_negative, "seed of the first episode (then +1 per episode), >= 0"),
                "instruction": ("", None, "replaces the sampled instruction when not empty"),
                "rate_hz": (5.0, positive, "decisions per second (simulated time runs with wall time), > 0"),
                "image_width": (96, lambda v: 8 <= v <= 2048, "camera width [px], 8..2048"),
                "image_height": (96, lambda v: 8 <= v <= 2048, "camera height [px], 8..2048"),
                "command_timeout_s": (1.0, positive, "older commands are replaced by stand, > 0 [s]"),
                "reset_delay_s": (1.0, non_negative, "pause after an episode ends before the next [s], >= 0"),
                "auto_reset": (True, None, "start the next episode by itself"),
            },
        )
        try:
            config = SimConfig(image_height=p["image_height"], image_width=p["image_width"], decision_hz=p["rate_hz"])
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self.session = SimSession(
            task=p["task"],
            split=p["split"],
            seed=p["seed"],
            instruction=p["instruction"],
            config=config,
            reset_delay_ticks=max(1, round(p["reset_delay_s"] * p["rate_hz"])),
            auto_reset=p["auto_reset"],
        )
        self._timeout = p["command_timeout_s"]
        self._command = None
        self._command_time = -float("inf")
        self._episode_start_ns = 0  # stamp of the current episode's first image
        self.stale_commands = 0
        self._types = {"image": Image, "info": CameraInfo, "status": EpisodeStatus, "odom": Odometry, "str": String}
        self._image_pub = self.create_publisher(
            Image, names.CAMERA_IMAGE, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._info_pub = self.create_publisher(
            CameraInfo, names.CAMERA_INFO, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._status_pub = self.create_publisher(
            EpisodeStatus, names.SIM_EPISODE, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._odom_pub = self.create_publisher(Odometry, names.SIM_ODOM, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self._instruction_pub = self.create_publisher(
            String, names.INSTRUCTION, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_service(Trigger, names.SIM_RESET, self._on_reset)
        self._camera_k = camera_matrix(config.image_height, config.image_width, config.fovy)
        self.create_timer(1.0 / p["rate_hz"], self._tick)

    def _on_command(self, msg) -> None:  # noqa: ANN001
        try:
            command = msg_to_command(msg)
            self.session.env.unwrapped.action_contract.clip(command)  # raises on NaN/inf
        except InvalidActionError as err:
            self.get_logger().error(f"rejected command: {err}; standing")
            command = None
        # A decision on an image from before this episode began (e.g. the previous episode's last frame, which may
        # say terminate) must not act in this one; stop commands carry no image stamp and always apply.
        stamp = stamp_to_ns(msg.header.stamp)
        if stamp and stamp < self._episode_start_ns:
            self.stale_commands += 1
            return
        self._command = command
        self._command_time = time.monotonic()

    def _on_reset(self, request, response):  # noqa: ANN001
        self.session.request_reset()
        response.success = True
        response.message = f"episode {self.session.episode + 1} starts at the next tick"
        return response

    def _tick(self) -> None:
        fresh = time.monotonic() - self._command_time <= self._timeout
        result = self.session.tick(self._command if fresh else None)
        now = self.get_clock().now()
        stamp = now.to_msg()
        if result.new_episode:
            self._command = None  # a command for the previous episode must not leak into this one
            self._episode_start_ns = now.nanoseconds
            self._instruction_pub.publish(self._types["str"](data=result.instruction))
            self.get_logger().info(f"episode {result.episode}: {result.task}: {result.instruction!r}")
        self._image_pub.publish(self._image(result, stamp))
        self._info_pub.publish(self._camera_info(result, stamp))
        self._status_pub.publish(self._status(result, stamp))
        self._odom_pub.publish(self._odometry(result, stamp))

    # -- message builders ------------------------------------------------------------------------
    def _image(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._types["image"]()
        msg.header.stamp = stamp
        msg.header.frame_id = names.CAMERA_OPTICAL_FRAME
        msg.height, msg.width = int(r.image.shape[0]), int(r.image.shape[1])
        msg.encoding = "rgb8"
        msg.is_bigendian = 0
        msg.step = msg.width * 3
        msg.data = r.image.tobytes()
        return msg

    def _camera_info(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._types["info"]()
        msg.header.stamp = stamp
        msg.header.frame_id = names.CAMERA_OPTICAL_FRAME
        msg.height, msg.width = int(r.image.shape[0]), int(r.image.shape[1])
        msg.distortion_model = "plumb_bob"
        msg.d = [0.0] * 5
        msg.k = self._camera_k
        msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        k = self._camera_k
        msg.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
        return msg

    def _status(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._types["status"]()
        msg.header.stamp = stamp
        msg.task = r.task
        msg.instruction = r.instruction
        msg.episode = max(r.episode, 0)
        msg.step = r.step
        msg.terminated = r.terminated
        msg.truncated = r.truncated
        msg.success = r.success
        msg.reward = r.reward
        return msg

    def _odometry(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._types["odom"]()
        msg.header.stamp = stamp
        msg.header.frame_id = names.ODOM_FRAME
        msg.child_frame_id = names.BASE_FRAME
        pose = base_pose(r.state)
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        p.x, p.y, p.z = pose["position"]
        q.x, q.y, q.z, q.w = pose["orientation"]
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = r.state.vx, r.state.vy
        msg.twist.twist.angular.z = r.state.wz
        return msg

    def destroy_node(self) -> None:
        self.session.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, "sim_node", __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
