"""go2_mujoco_sim: the MuJoCo Go2 (Menagerie model, physics.Go2Sim) playing the robot over unitree_go topics.

Applies every unitree_go/LowCmd from /lowcmd as PD torques behind a 15 ms torque lag (wrong CRC: dropped, like
the robot) and publishes unitree_go/LowState on /lowstate after each timer tick (500 Hz at 2 ms steps).
Simulated time follows the steady clock (x real_time_factor), never ahead of it: a tick runs the physics steps
that are due, so a process starved for a few ms catches up in one batch (up to `max_catch_up_steps`; LowCmds
received meanwhile act from the next batch, like a late robot) and the walking policy, paced by the wall clock,
keeps its time base. Starved for longer, the simulation drops the backlog and falls behind.

The true base pose goes out on /more/go2_sim/odom (nav_msgs/Odometry, stamped in simulated time) for tests and
monitoring; the bridge and the controller never read it. /diagnostics ("go2_mujoco_sim: motors") counts
accepted and dropped LowCmds and what a motor driver would have clipped (physics.MotorAudit). A
geometry_msgs/Twist on /more/go2_sim/push shoves the trunk (linear: world-frame velocity change [m/s],
angular: trunk-frame [rad/s]), for tests.
"""

from __future__ import annotations

import time

from rclpy.node import Node

from more_common.errors import ConfigurationError
from more_ros import diagnostics, names
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive

NODE_NAME = "go2_mujoco_sim"
PARAMS = {
    "timestep": (0.002, positive, "physics step [s]; one LowState per step"),
    "real_time_factor": (1.0, positive, "simulated seconds per wall second at most"),
    "start": ("lying", lambda v: v in ("lying", "standing"), "initial pose: lying | standing"),
    "odom_rate_hz": (50.0, positive, "rate of the ground-truth odometry [Hz]"),
    "actuator_lag_s": (0.015, non_negative, "first-order lag between commanded and applied torque [s]"),
    "max_catch_up_steps": (10, positive, "most physics steps one tick runs to catch up with the clock"),
    "diagnostics_period_s": (1.0, positive, "period of /diagnostics (LowCmd counts and the motor audit) [s]"),
}


class Go2SimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from rclpy.clock import Clock, ClockType

        from go2_sim.physics import Go2Sim
        from more_ros.qos import COMMAND_QOS, OVERRIDABLE, SENSOR_QOS, STATUS_QOS
        from unitree_go.msg import LowCmd, LowState

        p = self.params = declare_parameters(self, PARAMS)
        try:
            self.sim = Go2Sim(timestep=p["timestep"], start=p["start"], actuator_lag_s=p["actuator_lag_s"])
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self._lowstate = LowState()
        self._odom = Odometry()
        self._odom.header.frame_id = names.ODOM_FRAME
        self._odom.child_frame_id = names.BASE_FRAME
        self._odom_every = max(1, round(1.0 / (p["odom_rate_hz"] * p["timestep"])))
        self._steps = 0
        self._lowstate_pub = self.create_publisher(
            LowState, names.LOWSTATE, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._odom_pub = self.create_publisher(
            Odometry, names.GO2_SIM_ODOM, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(LowCmd, names.LOWCMD, self._on_lowcmd, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self.create_subscription(
            Twist, names.GO2_SIM_PUSH, self._on_push, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._step_wall = p["timestep"] / p["real_time_factor"]  # wall seconds per physics step
        self._t0 = time.monotonic()
        self.create_timer(self._step_wall, self._tick, clock=steady)
        self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)
        self.get_logger().info(f"MuJoCo Go2 up ({p['start']}), {1 / p['timestep']:.0f} Hz LowState")
        self._exit_on_signal()

    def _exit_on_signal(self) -> None:
        """SIGINT/SIGTERM shut the context down (the executor's spin then ends cleanly) instead of raising:
        raised inside a C call (a MuJoCo step, a publish, an ONNX run) a KeyboardInterrupt comes back as a
        RuntimeError and the process would exit with a traceback."""
        import signal

        def handler(_signum: int, _frame: object) -> None:
            self.context.try_shutdown()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    def _on_lowcmd(self, msg) -> None:  # noqa: ANN001
        try:
            if not self.sim.apply_lowcmd(msg) and self.sim.dropped_commands in (1, 100, 10000):
                self.get_logger().warning(f"dropped {self.sim.dropped_commands} LowCmd(s) with a bad CRC or head")
        except Exception as err:  # a robot does not crash on a bad frame either
            self.get_logger().error(f"bad LowCmd: {type(err).__name__}: {err}")

    def _on_push(self, msg) -> None:  # noqa: ANN001
        lin, ang = msg.linear, msg.angular
        values = (lin.x, lin.y, lin.z, ang.x, ang.y, ang.z)
        if not all(abs(v) < 1e3 for v in values):  # NaN fails this too
            self.get_logger().error(f"push ignored: needs finite values below 1e3, got {values}")
            return
        self.sim.push(values[:3], values[3:])
        self.get_logger().info(f"pushed: linear {values[:3]} m/s, angular {values[3:]} rad/s")

    def _tick(self) -> None:
        due = int((time.monotonic() - self._t0) / self._step_wall) - self._steps
        if due <= 0:
            return
        limit = self.params["max_catch_up_steps"]
        if due > limit:  # starved too long: drop the backlog (time falls behind) rather than run long open-loop
            self._t0 += (due - limit) * self._step_wall
            due = limit
        before = self._steps
        self.sim.step(due)
        self._steps += due
        self._lowstate_pub.publish(self.sim.fill_lowstate(self._lowstate))
        if self._steps // self._odom_every != before // self._odom_every:
            self._publish_odom()

    def _publish_diagnostics(self) -> None:
        sim, audit = self.sim, self.sim.audit
        values: dict[str, object] = {
            "sim_time_s": sim.time,
            "lowcmd_accepted": sim.accepted_commands,
            "lowcmd_dropped_bad_crc": sim.dropped_commands,
            **audit.values(),
        }
        bad = audit.q_outside or audit.tau_outside or audit.worst_pd_excess > 0 or sim.dropped_commands
        level = diagnostics.WARN if bad else diagnostics.OK
        message = "LowCmd outside the motor limits or dropped" if bad else "ok"
        stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(
            diagnostics.diagnostic_array(f"{NODE_NAME}: motors", level, message, values, stamp, "unitree_go2_sim")
        )

    def _publish_odom(self) -> None:
        ns = round(self.sim.time * 1e9)
        o = self._odom
        o.header.stamp.sec, o.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        x, y, z = (float(v) for v in self.sim.base_position)
        o.pose.pose.position.x, o.pose.pose.position.y, o.pose.pose.position.z = x, y, z
        w, qx, qy, qz = (float(v) for v in self.sim.base_quaternion_wxyz)
        q = o.pose.pose.orientation
        q.w, q.x, q.y, q.z = w, qx, qy, qz
        v = self.sim.body.base_linear_velocity
        o.twist.twist.linear.x, o.twist.twist.linear.y, o.twist.twist.linear.z = (float(a) for a in v)
        self._odom_pub.publish(o)


def main(args: list[str] | None = None) -> int:
    return run_node(
        Go2SimNode,
        prog="go2_mujoco_sim",
        description="MuJoCo Go2 backend: publishes unitree_go/LowState, applies unitree_go/LowCmd as PD torques.",
        argv=args,
    )


if __name__ == "__main__":
    raise SystemExit(main())
