"""command_mux: teleoperation overrides the VLA while it keeps arriving; the chosen command on /more/command.

Inputs (reliable, depth 1): the VLA's QuadrupedCommand on /more/vla/command (run the policy node with
`-r /more/command:=/more/vla/command`), the 12-dim teleop QuadrupedCommand on /more/teleop/command (`more-teleop`)
and a geometry_msgs/Twist on /more/teleop/cmd_vel (teleop_twist_keyboard, teleop_twist_joy; REP-103 base_link:
linear.x forward, linear.y left, angular.z counter-clockwise -> the contract's vx, vy, wz, other dims standing).
Priority teleop command > twist > VLA; a teleop source rules while its messages keep arriving within
teleop_timeout_s (the deadman); afterwards the robot stands until the VLA sends a fresh command (resume:=fresh,
default) or the VLA's newest command applies at once (resume:=immediate). Outputs: the active source's command on
/more/command, unchanged (stamp, bins and Q-values kept); its vx, vy, wz as a Twist on /cmd_vel (zeros when stopped
or terminated); /diagnostics naming the active source, the overrides and every rejected or clipped input. Non-finite
input is a stop command; out-of-range input is clipped (more_teleop.arbiter holds the rules).
"""

from __future__ import annotations

import time

from rclpy.node import Node

from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.convert import command_to_msg, msg_to_command
from more_ros.diagnostics import ERROR, OK, WARN, diagnostic_array
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, positive
from more_teleop.arbiter import (
    OPERATOR_SOURCES,
    PRIORITY,
    RESUME_MODES,
    STOP,
    TELEOP,
    VLA,
    Checked,
    CommandArbiter,
    MuxConfig,
    Output,
    check_command,
    check_twist,
    twist_of,
)

NODE_NAME = "command_mux"
PARAMS = {
    "teleop_timeout_s": (0.5, positive, "deadman: a teleop source silent this long lets go [s], > 0"),
    "vla_timeout_s": (1.0, positive, "a VLA command older than this is not followed [s], > 0"),
    "resume": ("fresh", lambda v: v in RESUME_MODES, f"after a teleop override: one of {list(RESUME_MODES)}"),
    "stop_rate_hz": (10.0, positive, "rate of the stop command while no source is active [Hz], > 0"),
    "publish_cmd_vel": (True, None, "mirror the active command's velocity as a Twist on /cmd_vel"),
    "diagnostics_period_s": (1.0, positive, "period of the /diagnostics report [s], > 0"),
}
DIAG_NAME = "more_teleop: command mux"


class CommandMuxNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist

        from more_msgs.msg import QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, OVERRIDABLE, STATUS_QOS

        p = declare_parameters(self, PARAMS)
        try:
            config = MuxConfig(p["teleop_timeout_s"], p["vla_timeout_s"], p["resume"])
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self.arbiter = CommandArbiter(config)
        self._twist_type = Twist
        self._publish_cmd_vel = p["publish_cmd_vel"]
        self._cmd_pub = self.create_publisher(
            QuadrupedCommand, names.COMMAND, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._twist_pub = (
            self.create_publisher(Twist, names.CMD_VEL, COMMAND_QOS, qos_overriding_options=OVERRIDABLE)
            if self._publish_cmd_vel
            else None
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            QuadrupedCommand,
            names.VLA_COMMAND,
            lambda m: self._on_command(VLA, m),
            COMMAND_QOS,
            qos_overriding_options=OVERRIDABLE,
        )
        self.create_subscription(
            QuadrupedCommand,
            names.TELEOP_COMMAND,
            lambda m: self._on_command(TELEOP, m),
            COMMAND_QOS,
            qos_overriding_options=OVERRIDABLE,
        )
        self.create_subscription(
            Twist, names.TELEOP_TWIST, self._on_twist, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._last_source = STOP
        self._published = 0
        self._reported = (0, 0)  # rejected, clipped inputs at the last report
        self._ignored: set[str] = set()  # twist fields the robot cannot follow that arrived non-zero
        self.create_timer(1.0 / p["stop_rate_hz"], self._tick)
        self.create_timer(p["diagnostics_period_s"], self._diagnose)

    # -- inputs ----------------------------------------------------------------------------------
    def _on_command(self, source: str, msg) -> None:  # noqa: ANN001
        checked = check_command(source, msg_to_command(msg))
        self._handle(checked, msg)

    def _on_twist(self, msg) -> None:  # noqa: ANN001
        lin, ang = msg.linear, msg.angular
        checked = check_twist((lin.x, lin.y, lin.z), (ang.x, ang.y, ang.z))
        self._handle(checked, None)

    def _handle(self, checked: Checked, msg) -> None:  # noqa: ANN001
        log = self.get_logger()
        if checked.rejected:
            log.error(f"rejected {checked.source} input: {checked.error}; standing", throttle_duration_sec=1.0)
        elif checked.clipped:
            log.warning(
                f"{checked.source} input outside the contract's bounds, clipped: {checked.clipped}",
                throttle_duration_sec=1.0,
            )
        if checked.ignored:
            self._ignored.update(checked.ignored)
            log.warning(
                f"twist fields a legged base cannot follow are ignored: {checked.ignored}", throttle_duration_sec=5.0
            )
        out = self.arbiter.receive(checked, time.monotonic())
        if out is not None:
            self._publish(out, msg if out.passthrough else None)

    def _tick(self) -> None:
        out = self.arbiter.tick(time.monotonic())
        if out is not None:
            self._publish(out, None)
        elif self.arbiter.active != self._last_source:
            self._report_change()

    # -- outputs ---------------------------------------------------------------------------------
    def _publish(self, out: Output, msg) -> None:  # noqa: ANN001
        self._cmd_pub.publish(msg if msg is not None else command_to_msg(out.command))
        self._published += 1
        if self._twist_pub is not None:
            vx, vy, wz = twist_of(out.command)
            twist = self._twist_type()
            twist.linear.x, twist.linear.y, twist.angular.z = vx, vy, wz
            self._twist_pub.publish(twist)
        if self.arbiter.active != self._last_source:
            self._report_change()

    def _report_change(self) -> None:
        self.get_logger().info(f"{self._last_source} -> {self.arbiter.active}: {self.arbiter.reason}")
        self._last_source = self.arbiter.active
        self._diagnose()

    def _diagnose(self) -> None:
        a = self.arbiter
        now = time.monotonic()
        rejected = sum(st.rejected for st in a.stats.values())
        clipped = sum(st.clipped for st in a.stats.values())
        level, message = OK, a.reason
        if a.active == STOP and a.reason != "no command received yet":
            level = WARN
        if a.active in OPERATOR_SOURCES and a.stats[VLA].dropped:
            message += f" (overriding the VLA: {a.stats[VLA].dropped} VLA commands not followed so far)"
        if clipped > self._reported[1]:
            level = max(level, WARN)
            message += "; clipped: " + ", ".join(f"{s} {st.last_clipped}" for s, st in a.stats.items() if st.clipped)
        if rejected > self._reported[0]:
            level = ERROR
            message += "; rejected: " + ", ".join(f"{s} ({st.last_error})" for s, st in a.stats.items() if st.rejected)
        self._reported = (rejected, clipped)
        values = {"active_source": a.active, "overrides": a.overrides, "published": self._published}
        ages = a.ages(now)
        for s in PRIORITY:
            st = a.stats[s]
            values[f"{s}.age_s"] = round(ages[s], 3) if ages[s] != float("inf") else "never"
            values[f"{s}.received"] = st.received
            values[f"{s}.dropped"] = st.dropped
            values[f"{s}.rejected"] = st.rejected
            values[f"{s}.clipped"] = st.clipped
            if st.last_error:
                values[f"{s}.last_rejection"] = st.last_error
            if st.last_clipped:
                values[f"{s}.last_clipped_dims"] = ",".join(st.last_clipped)
        if self._ignored:
            values["twist.ignored_fields"] = ",".join(sorted(self._ignored))
        self._diag_pub.publish(diagnostic_array(DIAG_NAME, level, message, values, self.get_clock().now().to_msg()))


def main(args: list[str] | None = None) -> int:
    return run_node(CommandMuxNode, NODE_NAME, __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
