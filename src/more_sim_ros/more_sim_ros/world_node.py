"""ROS 2 shell around the six-task simulator: QuadrupedCommand in; camera, episode status and pose out.

Two embodiments (parameter `embodiment`):
- `kinematic` (default): the kinematic base follows /more/command itself (more_sim.session.SimSession).
- `go2`: the simulator also plays the robot: the physics Go2 (Menagerie model, more_sim.go2.session.Go2Session)
  takes unitree_go/LowCmd from /lowcmd (CRC and head checked, PD applied from the LowCmd: go2_sim.physics.Go2Sim)
  and publishes unitree_go/LowState (with its CRC) on /lowstate after every physics tick; the bridge and the
  controller walk it. Physics is paced by the steady clock times `real_time_factor` (simulated time never ahead
  of it, a starved process catches up by at most `max_catch_up_steps`); `rate_hz`, `command_timeout_s` and
  `reset_delay_s` are then simulated time. /more/command is still read: its terminate ends the episode and it is
  what the success check and the tracking statistics refer to. Episodes start only while the bridge reports
  ACTIVE (/more/bridge/state); the third-person view goes out on /more/sim/view when someone subscribes.

Each decision (kinematic: a timer tick at `rate_hz`; go2: every 1 / rate_hz simulated s) uses the newest command
(the stand command if none arrived within `command_timeout_s`) and publishes:
- the front camera as sensor_msgs/Image rgb8 on the realsense-ros topic, frame
  camera_color_optical_frame, sensor-data QoS, plus its CameraInfo (pinhole from the field of view);
- more_msgs/EpisodeStatus (task, instruction, episode, step, terminated/truncated/success, reward);
- once per episode, when it ends: more_msgs/EpisodeEnd (steps, success and how it ended: more_sim.rollout.ENDS,
  the vocabulary of `more-sim eval`, e.g. fall or contact:obstacle);
- nav_msgs/Odometry of the trunk (odom -> base_link; twist = the trunk's mean velocity over the decision,
  heading frame);
- the episode's instruction on the instruction topic (latched), whenever an episode starts.
Episodes follow each other (seed, seed + 1, ...); the std_srvs/Trigger service SIM_RESET starts the
next one at once. The first episode waits until the stack is connected (DDS discovery takes seconds on a busy
machine, and an episode that runs before anyone sees it is lost to the policy, the runner and a recording):
`wait_for_image_subscribers` camera subscribers, `wait_for_status_subscribers` episode-status subscribers and
`wait_for_command_publishers` command publishers matched, or `wait_timeout_s` passed (then a warning).
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
from more_sim.env import MAX_INSTRUCTION_LENGTH, instruction_problem
from more_sim.rollout import episode_end
from more_sim.session import SimSession, TickResult, base_pose, camera_matrix
from more_sim.splits import SPLITS, TASKS

NODE_NAME = "more_sim"
EMBODIMENTS = ("kinematic", "go2")
PARAMS = {
    "task": ("go_to", lambda v: v in (*TASKS, "all"), f"one of {[*TASKS, 'all']}"),
    "split": ("id", lambda v: v in SPLITS, f"one of {list(SPLITS)}"),
    "seed": (0, non_negative, "seed of the first episode (then +1 per episode), >= 0"),
    "instruction": (
        "",
        lambda text: instruction_problem(text) is None,
        f"replaces the sampled instruction when not empty (printable ASCII, <= {MAX_INSTRUCTION_LENGTH} characters)",
    ),
    "embodiment": ("kinematic", lambda v: v in EMBODIMENTS, "kinematic (base tracker) | go2 (physics Go2 on LowCmd)"),
    "rate_hz": (5.0, positive, "decisions per second (kinematic: wall time; go2: simulated time), > 0"),
    "image_width": (96, lambda v: 8 <= v <= 2048, "camera width [px], 8..2048"),
    "image_height": (96, lambda v: 8 <= v <= 2048, "camera height [px], 8..2048"),
    "command_timeout_s": (1.0, positive, "older commands are replaced by stand, > 0 [s] (go2: simulated)"),
    "reset_delay_s": (1.0, non_negative, "pause after an episode ends before the next [s], >= 0 (go2: simulated)"),
    "auto_reset": (True, None, "start the next episode by itself"),
    "real_time_factor": (1.0, positive, "go2: simulated seconds per wall second at most (slow motion < 1)"),
    "timestep": (0.002, positive, "go2: physics step [s]; one LowState per timer tick"),
    "actuator_lag_s": (0.015, non_negative, "go2: first-order lag between commanded and applied torque [s]"),
    "max_catch_up_steps": (10, positive, "go2: most physics steps one tick runs to catch up with the clock"),
    "start": ("lying", lambda v: v in ("lying", "standing"), "go2: the robot's pose before the first episode"),
    "view_width": (320, lambda v: 16 <= v <= 2048, "go2: third-person view width [px] (/more/sim/view)"),
    "view_height": (240, lambda v: 16 <= v <= 2048, "go2: third-person view height [px]"),
    "visual_meshes": (False, None, "go2: Menagerie's visual meshes in the third-person view (slower to render)"),
    "bring_up_bridge": (False, None, "go2: call the bridge's stand_up/activate (and reset after a fall) itself"),
    "wait_for_image_subscribers": (0, non_negative, "the first episode waits for this many camera subscribers"),
    "wait_for_status_subscribers": (0, non_negative, "... and this many episode-status subscribers"),
    "wait_for_command_publishers": (0, non_negative, "... and this many command publishers"),
    "wait_timeout_s": (30.0, positive, "then starts anyway after this long [s, wall], with a warning"),
}


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from more_msgs.msg import EpisodeEnd, EpisodeStatus, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, OVERRIDABLE, SENSOR_QOS, STATUS_QOS

        p = self.params = declare_parameters(self, PARAMS)
        self.go2 = p["embodiment"] == "go2"
        delay = max(1, round(p["reset_delay_s"] * p["rate_hz"]))
        try:
            config = SimConfig(
                image_height=p["image_height"],
                image_width=p["image_width"],
                decision_hz=p["rate_hz"],
                embodiment=p["embodiment"],
            )
            if self.go2:
                from more_sim.go2.session import Go2Session

                self.session = Go2Session(
                    p["task"], p["split"], p["seed"], p["instruction"], config, delay, p["auto_reset"],
                    p["timestep"], p["actuator_lag_s"], (p["view_height"], p["view_width"]), p["visual_meshes"],
                )  # fmt: skip
            else:
                self.session = SimSession(
                    task=p["task"],
                    split=p["split"],
                    seed=p["seed"],
                    instruction=p["instruction"],
                    config=config,
                    reset_delay_ticks=delay,
                    auto_reset=p["auto_reset"],
                )
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self._timeout = p["command_timeout_s"]
        self._command = None
        self._command_time = -float("inf")
        self._episode_start_ns = 0  # stamp of the current episode's first image
        self._reported_end = -1  # the last episode whose end was published
        self.stale_commands = 0
        self._types = {
            "image": Image, "info": CameraInfo, "status": EpisodeStatus, "end": EpisodeEnd, "odom": Odometry,
            "str": String,
        }  # fmt: skip
        self._image_pub = self.create_publisher(
            Image, names.CAMERA_IMAGE, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._info_pub = self.create_publisher(
            CameraInfo, names.CAMERA_INFO, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._status_pub = self.create_publisher(
            EpisodeStatus, names.SIM_EPISODE, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._end_pub = self.create_publisher(
            EpisodeEnd, names.SIM_EPISODE_END, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._odom_pub = self.create_publisher(Odometry, names.SIM_ODOM, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self._instruction_pub = self.create_publisher(
            String, names.INSTRUCTION, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._command_sub = self.create_subscription(
            QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_service(Trigger, names.SIM_RESET, self._on_reset)
        self._connected = False
        self._wait_deadline = time.monotonic() + p["wait_timeout_s"]
        self._camera_k = camera_matrix(config.image_height, config.image_width, config.camera_fovy)
        if self.go2:
            self._setup_go2(p)
        else:
            self.create_timer(1.0 / p["rate_hz"], self._tick)

    # -- the go2 embodiment: the simulator plays the robot on /lowcmd and /lowstate ------------------------
    def _setup_go2(self, p: dict) -> None:
        import signal

        from rclpy.clock import Clock, ClockType
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from go2_sim.physics import Go2Sim
        from more_ros.qos import LATCHED_QOS, OVERRIDABLE, SENSOR_QOS
        from unitree_go.msg import LowCmd, LowState

        # the simulated robot: LowCmd checked (CRC, head) and applied as PD torques, LowState filled with its CRC
        self.robot = Go2Sim(timestep=p["timestep"], start=p["start"], body=self.session.body)
        self._lowstate = LowState()
        self._lowstate_pub = self.create_publisher(
            LowState, names.LOWSTATE, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._view_pub = self.create_publisher(Image, names.SIM_VIEW, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self.create_subscription(LowCmd, names.LOWCMD, self._on_lowcmd, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self.create_subscription(
            String, names.BRIDGE_STATE, self._on_bridge_state, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._bridge_active = False
        self.bringup = None
        if p["bring_up_bridge"]:  # sim_go2.launch.py: no runner there to do it (more-stack does it from its process)
            from std_srvs.srv import Trigger

            from more_sim_ros.bridge_bringup import NEXT_CALL, BridgeBringup

            self.bringup = BridgeBringup()
            self._clients = {s: self.create_client(Trigger, s) for s in NEXT_CALL.values()}
            self._trigger = Trigger
            self.create_timer(0.1, self._bring_up, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._step_wall = p["timestep"] / p["real_time_factor"]  # wall seconds per physics step
        self._steps = 0
        self._t0 = time.monotonic()
        self.create_timer(self._step_wall, self._tick_go2, clock=Clock(clock_type=ClockType.STEADY_TIME))

        def handler(_signum: int, _frame: object) -> None:  # end the spin, not a C call (see go2_sim.node)
            self.context.try_shutdown()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)
        self.get_logger().info(
            f"MuJoCo Go2 in the six-task world ({p['start']}), real_time_factor {p['real_time_factor']}; "
            "episodes start when the bridge is ACTIVE"
        )

    def _on_lowcmd(self, msg) -> None:  # noqa: ANN001
        try:
            if not self.robot.apply_lowcmd(msg) and self.robot.dropped_commands in (1, 100, 10000):
                self.get_logger().warning(f"dropped {self.robot.dropped_commands} LowCmd(s) with a bad CRC or head")
        except Exception as err:  # a robot does not crash on a bad frame either
            self.get_logger().error(f"bad LowCmd: {type(err).__name__}: {err}")

    def _on_bridge_state(self, msg) -> None:  # noqa: ANN001
        self._bridge_active = msg.data.startswith("ACTIVE")
        if self.bringup is not None:
            self.bringup.on_state(msg.data)

    def _bring_up(self) -> None:
        service = self.bringup.next_call(time.monotonic())
        if service is None:
            return
        client = self._clients[service]
        if not client.service_is_ready():
            self.bringup.on_result(service, False)
            return
        future = client.call_async(self._trigger.Request())
        future.add_done_callback(lambda f: self.bringup.on_result(service, bool(f.result() and f.result().success)))

    def _tick_go2(self) -> None:
        due = int((time.monotonic() - self._t0) / self._step_wall) - self._steps
        if due <= 0:
            return
        limit = self.params["max_catch_up_steps"]
        if due > limit:  # starved too long: drop the backlog (time falls behind) rather than run long open-loop
            self._t0 += (due - limit) * self._step_wall
            due = limit
        # command freshness in simulated seconds (the clock this simulator owns)
        fresh = (time.monotonic() - self._command_time) * self.params["real_time_factor"] <= self._timeout
        self.session.set_command(self._command if fresh else None)
        self.session.ready = self._bridge_active and self._stack_connected()
        self.session.want_view = self._view_pub.get_subscription_count() > 0
        results = self.session.advance(due)
        self._steps += due
        self._lowstate_pub.publish(self.robot.fill_lowstate(self._lowstate))
        for result in results:
            self._publish(result)

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

    def _stack_connected(self) -> bool:
        """Whether the first episode may start: the configured readers and writers matched, or waited long enough."""
        if self._connected:
            return True
        p = self.params
        counts = (
            (self._image_pub.get_subscription_count(), p["wait_for_image_subscribers"], "camera subscribers"),
            (self._status_pub.get_subscription_count(), p["wait_for_status_subscribers"], "episode-status subscribers"),
            (self._command_sub.get_publisher_count(), p["wait_for_command_publishers"], "command publishers"),
        )
        missing = [f"{have}/{want} {what}" for have, want, what in counts if have < want]
        if missing and time.monotonic() < self._wait_deadline:
            return False
        if missing:
            self.get_logger().warning(f"starting after {p['wait_timeout_s']:g} s without: {', '.join(missing)}")
        self._connected = True
        return True

    def _tick(self) -> None:
        if not self._stack_connected():
            return
        fresh = time.monotonic() - self._command_time <= self._timeout
        self._publish(self.session.tick(self._command if fresh else None))

    def _publish(self, result: TickResult) -> None:
        now = self.get_clock().now()
        stamp = now.to_msg()
        if result.new_episode:
            self._command = None  # a command for the previous episode must not leak into this one
            self._episode_start_ns = now.nanoseconds
            self._instruction_pub.publish(self._types["str"](data=result.instruction))
            self.get_logger().info(f"episode {result.episode}: {result.task}: {result.instruction!r}")
        ended = result.terminated or result.truncated
        report_end = ended and self._reported_end != result.episode  # once: the ended status repeats a while
        self._image_pub.publish(self._image(result, stamp))
        self._info_pub.publish(self._camera_info(result, stamp))
        if report_end:  # before the status: a reader that stops at the first ended status has the end already
            self._reported_end = result.episode
            end = self._end(result, stamp)
            self._end_pub.publish(end)
            self.get_logger().info(f"episode {result.episode} ended: {end.end} after {result.step} decisions")
        self._status_pub.publish(self._status(result, stamp))
        self._odom_pub.publish(self._odometry(result, stamp))
        if result.view is not None:
            self._view_pub.publish(self._rgb(result.view, stamp, names.BASE_FRAME))

    # -- message builders ------------------------------------------------------------------------
    def _image(self, r: TickResult, stamp):  # noqa: ANN001
        return self._rgb(r.image, stamp, names.CAMERA_OPTICAL_FRAME)

    def _rgb(self, image, stamp, frame_id: str):  # noqa: ANN001
        msg = self._types["image"]()
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
        msg.encoding = "rgb8"
        msg.is_bigendian = 0
        msg.step = msg.width * 3
        msg.data = image.tobytes()
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

    def _episode_msg(self, kind: str, r: TickResult, stamp):  # noqa: ANN001
        """The fields EpisodeStatus and EpisodeEnd share, filled from `r`."""
        msg = self._types[kind]()
        msg.header.stamp = stamp
        msg.task, msg.instruction, msg.episode = r.task, r.instruction, max(r.episode, 0)
        msg.terminated, msg.truncated, msg.success = r.terminated, r.truncated, r.success
        return msg

    def _status(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._episode_msg("status", r, stamp)
        msg.step, msg.reward = r.step, r.reward
        return msg

    def _end(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._episode_msg("end", r, stamp)
        msg.steps, msg.end = r.step, episode_end(r.success, r.failure, r.truncated)
        return msg

    def _odometry(self, r: TickResult, stamp):  # noqa: ANN001
        msg = self._types["odom"]()
        msg.header.stamp = stamp
        msg.header.frame_id = names.ODOM_FRAME
        msg.child_frame_id = names.BASE_FRAME
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        if self.go2:  # the trunk's true pose (roll included: a fall shows here)
            body = self.session.body
            p.x, p.y, p.z = (float(v) for v in body.base_position)
            q.w, q.x, q.y, q.z = (float(v) for v in body.base_quaternion_wxyz)
        else:
            pose = base_pose(r.state)
            p.x, p.y, p.z = pose["position"]
            q.x, q.y, q.z, q.w = pose["orientation"]
        vx, vy, wz = r.velocity
        msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.angular.z = vx, vy, wz
        return msg

    def destroy_node(self) -> None:
        self.session.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, "sim_node", __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
