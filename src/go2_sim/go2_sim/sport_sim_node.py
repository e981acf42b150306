"""go2_sport_sim: a simulated Go2 in sport mode (sport_server.SportServer) over unitree_api, for simulation and tests.

Answers every unitree_api/Request on /api/sport/request with a unitree_api/Response on /api/sport/response (same
identity id and api id, the status code of sport_server; no answer when the request's policy says noreply), the
way the Go2's sport service does; the walking is the velocity policy in process at 50 Hz (Euler and BodyHeight:
its posture). Simulated time follows the steady clock (x real_time_factor), never ahead of it: a tick runs the
physics steps that are due (up to `max_catch_up_steps`), as go2_mujoco_sim does. The sport path has no 500 Hz
loop across processes (the policy runs in this process), so real time is the default. The true base pose goes
out on /more/go2_sim/odom (nav_msgs/Odometry, simulated time), the robot's mode, its posture and the calls it
handled on /diagnostics ("go2_sport_sim: sport service"). It has no /lowcmd or /lowstate: a robot in sport mode
does not take LowCmd.
"""

from __future__ import annotations

import time

from rclpy.node import Node

from go2_bridge.sport_api import FIRMWARES, api_config
from more_common.errors import ConfigurationError
from more_ros import diagnostics, names
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive

NODE_NAME = "go2_sport_sim"
PARAMS = {
    "timestep": (0.002, positive, "physics step [s]"),
    "real_time_factor": (1.0, positive, "simulated seconds per wall second at most"),
    "start": ("standing", lambda v: v in ("standing", "lying"), "initial state: standing (balancing) | lying"),
    "firmware_api": ("current", lambda v: v in FIRMWARES, "which sport API ids the simulated robot answers"),
    "policy_file": ("", None, "the locomotion policy (ONNX, velocity layout); empty: the bundled open Go2 policy"),
    "transition_s": (1.5, positive, "StandUp / StandDown / RecoveryStand joint motion time [s]"),
    "damping_kd": (2.0, non_negative, "joint damping in Damp [Nm s/rad]"),
    "actuator_lag_s": (0.015, non_negative, "first-order lag between commanded and applied torque [s]"),
    "odom_rate_hz": (50.0, positive, "rate of the ground-truth odometry [Hz]"),
    "tick_rate_hz": (100.0, positive, "rate of the stepping timer [Hz]"),
    "max_catch_up_steps": (50, positive, "most physics steps one tick runs to catch up with the clock"),
    "diagnostics_period_s": (1.0, positive, "period of /diagnostics [s]"),
}


class SportSimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from rclpy.clock import Clock, ClockType

        from go2_sim.sport_server import SportServer
        from more_ros.qos import OVERRIDABLE, SENSOR_QOS, STATUS_QOS
        from unitree_api.msg import Request, Response
        from wtw_controller.onnx_policy import OnnxPolicy, PolicyLoadError

        p = self.params = declare_parameters(self, PARAMS)
        try:
            policy = OnnxPolicy(p["policy_file"] or None)
        except PolicyLoadError as err:
            raise ConfigurationError(f"parameter 'policy_file': {err}") from err
        try:
            self.server = SportServer(
                policy, api_config(p["firmware_api"]), timestep=p["timestep"], actuator_lag_s=p["actuator_lag_s"],
                start=p["start"], transition_s=p["transition_s"], damping_kd=p["damping_kd"],
            )  # fmt: skip
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self._Response = Response
        self._odom = Odometry()
        self._odom.header.frame_id = names.ODOM_FRAME
        self._odom.child_frame_id = names.BASE_FRAME
        self._odom_every = max(1, round(1.0 / (p["odom_rate_hz"] * p["timestep"])))
        self._steps = 0
        self._requests = 0
        self._response_pub = self.create_publisher(
            Response, names.SPORT_RESPONSE, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._odom_pub = self.create_publisher(
            Odometry, names.GO2_SIM_ODOM, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            Request, names.SPORT_REQUEST, self._on_request, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._step_wall = p["timestep"] / p["real_time_factor"]  # wall seconds per physics step
        self._t0 = time.monotonic()
        self._behind_s = 0.0  # simulated time dropped because the process was starved
        self.create_timer(1.0 / p["tick_rate_hz"], self._tick, clock=steady)
        self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)
        self.get_logger().info(f"simulated Go2 in sport mode up ({p['start']}), answering {names.SPORT_REQUEST}")
        self._exit_on_signal()

    def _exit_on_signal(self) -> None:
        """SIGINT/SIGTERM shut the context down instead of raising inside a MuJoCo or ONNX call (see go2_sim.node)."""
        import signal

        def handler(_signum: int, _frame: object) -> None:
            self.context.try_shutdown()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    def _on_request(self, msg) -> None:  # noqa: ANN001
        self._requests += 1
        try:
            code = self.server.handle(int(msg.header.identity.api_id), str(msg.parameter))
        except Exception as err:  # a robot does not crash on a bad request either
            self.get_logger().error(f"bad sport request: {type(err).__name__}: {err}")
            return
        if msg.header.policy.noreply:
            return
        r = self._Response()
        r.header.identity.id = msg.header.identity.id
        r.header.identity.api_id = msg.header.identity.api_id
        r.header.status.code = code
        self._response_pub.publish(r)

    def _tick(self) -> None:
        due = int((time.monotonic() - self._t0) / self._step_wall) - self._steps
        if due <= 0:
            return
        limit = self.params["max_catch_up_steps"]
        if due > limit:  # starved too long: drop the backlog (time falls behind) rather than run long open-loop
            self._t0 += (due - limit) * self._step_wall
            self._behind_s += (due - limit) * self.params["timestep"]
            due = limit
        every = self._odom_every
        while due > 0:  # odometry at its own rate even when a tick runs many steps
            n = min(due, every - self._steps % every)
            self.server.advance(n)
            self._steps += n
            due -= n
            if self._steps % every == 0:
                self._publish_odom()

    def _publish_odom(self) -> None:
        body = self.server.body
        ns = round(body.time * 1e9)
        o = self._odom
        o.header.stamp.sec, o.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        x, y, z = (float(v) for v in body.base_position)
        o.pose.pose.position.x, o.pose.pose.position.y, o.pose.pose.position.z = x, y, z
        w, qx, qy, qz = (float(v) for v in body.base_quaternion_wxyz)
        q = o.pose.pose.orientation
        q.w, q.x, q.y, q.z = w, qx, qy, qz
        v = body.base_linear_velocity
        o.twist.twist.linear.x, o.twist.twist.linear.y, o.twist.twist.linear.z = (float(a) for a in v)
        self._odom_pub.publish(o)

    def _publish_diagnostics(self) -> None:
        values = {**self.server.status(), "requests": self._requests, "dropped_sim_time_s": self._behind_s}
        message = f"{self.server.mode.value}"
        stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(
            diagnostics.diagnostic_array(
                f"{NODE_NAME}: sport service", diagnostics.OK, message, values, stamp, "unitree_go2_sim"
            )
        )


def main(args: list[str] | None = None) -> int:
    return run_node(
        SportSimNode,
        prog="go2_sport_sim",
        description="Simulated Go2 in sport mode: answers /api/sport/request (Move, StopMove, Damp, StandUp, ...) "
        "with the MuJoCo Go2 walking under the velocity policy; ground truth on /more/go2_sim/odom.",
        argv=args,
    )


if __name__ == "__main__":
    raise SystemExit(main())
