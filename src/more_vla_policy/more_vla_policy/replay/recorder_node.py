"""bag_recorder node: record topics to a rosbag2 bag (MCAP by default) with `rosbags`, where `ros2 bag` is missing.

Messages are stored as the raw CDR rclpy receives (no deserialisation), with the receive time on the node's
clock as log time. The stack's own topics (`STACK_TOPICS`: type and the QoS their publishers use) are subscribed
from the start, so a node started after the recorder is recorded from its first message; other topics are found
in the graph every `discovery_period_s` and recorded from then on. QoS follows the publishers: a latched topic
(all publishers transient local) is read latched, so e.g. an instruction published before recording started is
still recorded; reliable publishers are read reliably, anything else best effort; a stack topic whose publishers
turn out to use other policies (QoS overrides) is subscribed again to match them. On the robot,
`ros2 bag record -s mcap TOPICS` does the same job (docs/ros.md).
"""

from __future__ import annotations

import importlib

from rclpy.node import Node

from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, positive

NODE_NAME = "bag_recorder"
DEFAULT_TOPICS = [
    names.CAMERA_IMAGE,
    names.CAMERA_INFO,
    names.INSTRUCTION,
    names.COMMAND,
    names.POLICY_STATUS,
    names.SIM_EPISODE,
    names.SIM_EPISODE_END,
    names.SIM_ODOM,
    names.DIAGNOSTICS,
    names.EPISODE_STATUS,  # teleoperated episodes' labels (more_teleop.episode_node)
    names.VLA_COMMAND,  # what the policy proposed while the command mux runs (overridden or not)
]
# type and publisher QoS ("sensor" | "command" | "status" | "latched", more_ros.qos) of the stack's own topics
STACK_TOPICS = {
    names.CAMERA_IMAGE: ("sensor_msgs/msg/Image", "sensor"),
    names.CAMERA_INFO: ("sensor_msgs/msg/CameraInfo", "sensor"),
    names.INSTRUCTION: ("std_msgs/msg/String", "latched"),
    names.COMMAND: ("more_msgs/msg/QuadrupedCommand", "command"),
    names.VLA_COMMAND: ("more_msgs/msg/QuadrupedCommand", "command"),
    names.POLICY_STATUS: ("more_msgs/msg/PolicyStatus", "status"),
    names.SIM_EPISODE: ("more_msgs/msg/EpisodeStatus", "status"),
    names.SIM_EPISODE_END: ("more_msgs/msg/EpisodeEnd", "status"),
    names.EPISODE_STATUS: ("more_msgs/msg/EpisodeStatus", "status"),
    names.SIM_ODOM: ("nav_msgs/msg/Odometry", "sensor"),
    names.DIAGNOSTICS: ("diagnostic_msgs/msg/DiagnosticArray", "status"),
}
PARAMS = {
    "path": ("", None, "bag directory to create (must not exist)"),
    "storage": ("mcap", lambda v: v in ("mcap", "sqlite3"), "storage plugin: mcap or sqlite3"),
    "topics": (DEFAULT_TOPICS, lambda v: len(v) > 0, "topics to record"),
    "discovery_period_s": (0.5, positive, "how often to look for the recorded topics' publishers [s]"),
}


def message_class(type_name: str) -> type:
    """'pkg/msg/Type' -> the rclpy message class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def qos_for_publishers(infos: list) -> object:
    """The subscription QoS that matches every current publisher of a topic (see the module docstring)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    latched = bool(infos) and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=100,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def stack_qos(kind: str) -> object:
    """A recording subscription (depth 100) with the policies the stack's publishers of this kind use."""
    from rclpy.qos import HistoryPolicy, QoSProfile

    from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS

    base = {"sensor": SENSOR_QOS, "command": COMMAND_QOS, "status": STATUS_QOS, "latched": LATCHED_QOS}[kind]
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=100, reliability=base.reliability, durability=base.durability
    )


class BagRecorderNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from more_vla_policy.replay.bag_io import BagError, BagWriter

        p = self.params = declare_parameters(self, PARAMS)
        if not p["path"]:
            raise ConfigurationError("parameter 'path' is required: the bag directory to create")
        try:
            self.writer = BagWriter(p["path"], storage=p["storage"])
        except BagError as err:
            raise ConfigurationError(str(err)) from err
        self._subscribed: dict[str, object] = {}
        self._policies: dict[str, tuple] = {}  # topic -> (reliability, durability) subscribed with
        for topic in p["topics"]:
            if topic in STACK_TOPICS:
                type_name, kind = STACK_TOPICS[topic]
                self._subscribe(topic, type_name, stack_qos(kind))
        self._discover()
        self.create_timer(p["discovery_period_s"], self._discover)

    def _discover(self) -> None:
        types = dict(self.get_topic_names_and_types())
        for topic in self.params["topics"]:
            if topic not in types or self._subscribed.get(topic, False) is None:
                continue  # no publisher yet, or a type this process cannot record
            infos = self.get_publishers_info_by_topic(topic)
            qos = qos_for_publishers(infos)
            if self._policies.get(topic) == (qos.reliability, qos.durability):
                continue
            if topic in self._subscribed:  # publishers with other policies than the stack's (QoS overrides)
                if not infos:
                    continue
                self.destroy_subscription(self._subscribed.pop(topic))
                self.get_logger().info(f"{topic}: subscribing again to match its publishers' QoS")
            self._subscribe(topic, types[topic][0], qos)

    def _subscribe(self, topic: str, type_name: str, qos: object) -> None:
        try:
            cls = message_class(type_name)
            self.writer.add_topic(topic, type_name)  # idempotent
        except Exception as err:  # unknown type here: record the others
            self.get_logger().warning(f"cannot record {topic} ({type_name}): {err}")
            self._subscribed[topic] = None
            return
        self._policies[topic] = (qos.reliability, qos.durability)
        self._subscribed[topic] = self.create_subscription(
            cls, topic, lambda raw, t=topic: self._on_message(t, raw), qos, raw=True
        )

    def _on_message(self, topic: str, raw: bytes) -> None:
        self.writer.write_raw(topic, self.get_clock().now().nanoseconds, raw)

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.writer.counts)

    def destroy_node(self) -> None:
        self.writer.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(BagRecorderNode, NODE_NAME, __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
