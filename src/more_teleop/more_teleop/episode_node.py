"""episode_control: start, stop and label teleoperated episodes; labels as EpisodeStatus for the bag recorder.

Services: /more/episode/start (std_srvs/Trigger), /more/episode/stop (std_srvs/SetBool: data true = success,
false = failure), /more/episode/discard (std_srvs/Trigger: ended without a label, left out of datasets). Each
answers success=false with the reason when refused (start while recording, stop while idle, no instruction).
Publishes more_msgs/EpisodeStatus on /more/episode/status (reliable): at start, every 1/status_rate_hz s while
recording (step = commands seen on /more/command), and the final, labelled status at stop. The instruction is
the newest on /more/instruction (else the `instruction` parameter), frozen at start; `task` names the task.
With remote_enabled the Go2 remote labels too (R2+Y start, R2+A success, R2+B failure, R2+X discard, held
remote_hold_frames LowStates; read from LowState.wireless_remote on /lowstate). Record with bag_recorder (its
default topics include /more/episode/status) and convert with
`more-replay BAG --to-dataset DIR --episode-topic /more/episode/status --between-episodes drop --include-stops`.
"""

from __future__ import annotations

from rclpy.node import Node

from more_common.dataset import task_name_error
from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.diagnostics import OK, diagnostic_array
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, positive
from more_teleop.episodes import RECORDING, EpisodeControl, Reply, StatusFields

NODE_NAME = "episode_control"
PARAMS = {
    "task": (
        "go_to",
        lambda v: bool(v.strip()) and task_name_error(v) is None,
        "task label of the episodes (e.g. go_to, crawl): a plain name a dataset accepts, not empty",
    ),
    "instruction": ("", None, "instruction used until one arrives on /more/instruction"),
    "status_rate_hz": (5.0, positive, "EpisodeStatus rate while recording [Hz], > 0"),
    "remote_enabled": (False, None, "label with the Go2 remote's buttons (subscribes to /lowstate)"),
    "remote_hold_frames": (100, positive, "remote combos must be held this many LowStates (500 Hz), >= 1"),
}


class EpisodeControlNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos_overriding_options import QoSOverridingOptions
        from std_msgs.msg import String
        from std_srvs.srv import SetBool, Trigger

        from more_msgs.msg import EpisodeStatus, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, OVERRIDABLE, STATUS_QOS

        p = declare_parameters(self, PARAMS)
        self.control = EpisodeControl(p["task"])
        self.control.set_instruction(p["instruction"])
        self._status_type = EpisodeStatus
        self._status_pub = self.create_publisher(
            EpisodeStatus, names.EPISODE_STATUS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        # latched for an instruction published before this node started, volatile for a plain `ros2 topic pub`
        # (DDS does not match a latched reader with a volatile writer)
        for entity_id, qos in (("latched", LATCHED_QOS), ("volatile", STATUS_QOS)):
            self.create_subscription(
                String,
                names.INSTRUCTION,
                self._on_instruction,
                qos,
                qos_overriding_options=QoSOverridingOptions.with_default_policies(entity_id=entity_id),
            )
        self.create_subscription(
            QuadrupedCommand,
            names.COMMAND,
            lambda _: self.control.count_command(),
            COMMAND_QOS,
            qos_overriding_options=OVERRIDABLE,
        )
        self.create_service(Trigger, names.EPISODE_START, self._on_start)
        self.create_service(SetBool, names.EPISODE_STOP, self._on_stop)
        self.create_service(Trigger, names.EPISODE_DISCARD, self._on_discard)
        self._remote = None
        if p["remote_enabled"]:
            self._subscribe_remote(p["remote_hold_frames"])
        self.create_timer(1.0 / p["status_rate_hz"], self._tick)
        self.create_timer(1.0, self._diagnose)

    def _subscribe_remote(self, hold_frames: int) -> None:
        try:
            from more_teleop.remote_episodes import RemoteEpisodeButtons
            from unitree_go.msg import LowState
        except ImportError as err:
            raise ConfigurationError(f"remote_enabled needs unitree_go and go2_bridge: {err}") from err
        from more_ros.qos import OVERRIDABLE, SENSOR_QOS

        self._remote = RemoteEpisodeButtons(hold_frames)
        self.create_subscription(
            LowState, names.LOWSTATE, self._on_lowstate, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )

    # -- inputs ----------------------------------------------------------------------------------
    def _on_instruction(self, msg) -> None:  # noqa: ANN001
        if msg.data.strip() and msg.data.strip() != self.control.instruction:
            if self.control.state == RECORDING:
                kept = self.control.status().instruction
                self.get_logger().warning(
                    f"instruction changed during episode {self.control.episode}: it keeps {kept!r}"
                )
            self.control.set_instruction(msg.data)

    def _on_lowstate(self, msg) -> None:  # noqa: ANN001
        from go2_bridge.remote import parse_remote

        event = self._remote.update(parse_remote(bytes(msg.wireless_remote)))
        if event is not None:
            self.get_logger().info(f"remote: {event}")
            self._event(event)

    def _event(self, event: str) -> Reply:
        c = self.control
        reply = {
            "start": c.start,
            "success": lambda: c.stop(True),
            "failure": lambda: c.stop(False),
            "discard": c.discard,
        }[event]()
        if reply.ok:
            self.get_logger().info(reply.message)
        else:
            self.get_logger().warning(reply.message)
        if reply.status is not None:
            self._publish(reply.status)
        return reply

    def _on_start(self, request, response):  # noqa: ANN001
        return self._answer(self._event("start"), response)

    def _on_stop(self, request, response):  # noqa: ANN001
        return self._answer(self._event("success" if request.data else "failure"), response)

    def _on_discard(self, request, response):  # noqa: ANN001
        return self._answer(self._event("discard"), response)

    @staticmethod
    def _answer(reply: Reply, response):  # noqa: ANN001
        response.success = reply.ok
        response.message = reply.message
        return response

    # -- outputs ---------------------------------------------------------------------------------
    def _publish(self, s: StatusFields) -> None:
        msg = self._status_type()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.task, msg.instruction, msg.episode, msg.step = s.task, s.instruction, s.episode, s.step
        msg.terminated, msg.truncated, msg.success, msg.reward = s.terminated, s.truncated, s.success, s.reward
        self._status_pub.publish(msg)

    def _tick(self) -> None:
        if self.control.state == RECORDING:
            self._publish(self.control.status())

    def _diagnose(self) -> None:
        c = self.control
        message = f"recording episode {c.episode} ({c.step} commands)" if c.state == RECORDING else "idle"
        values = {
            "state": c.state,
            "task": c.task,
            "instruction": c.instruction,
            "episodes_started": c.episode + 1,
            "successes": c.successes,
            "failures": c.failures,
            "discarded": c.discarded,
        }
        if self._remote is not None:
            values["remote_implausible_frames"] = self._remote.rejected
        stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(diagnostic_array(f"more_teleop: {NODE_NAME}", OK, message, values, stamp))


def main(args: list[str] | None = None) -> int:
    return run_node(EpisodeControlNode, NODE_NAME, __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
