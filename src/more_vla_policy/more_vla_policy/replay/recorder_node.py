"""bag_recorder node: record topics to a rosbag2 bag (MCAP by default) with `rosbags`, where `ros2 bag` is missing.

Messages are stored as the raw CDR rclpy receives (no deserialisation), with the receive time on the node's
clock as log time. Topic types are discovered from the graph every `discovery_period_s`, so topics that appear
later are recorded from then on. QoS follows the publishers: a latched topic (all publishers transient local)
is read latched, so e.g. an instruction published before recording started is still recorded; reliable
publishers are read reliably, anything else best effort. On the robot, `ros2 bag record -s mcap TOPICS` does
the same job (docs/ros.md).
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
    names.SIM_ODOM,
    names.DIAGNOSTICS,
    names.EPISODE_STATUS,  # teleoperated episodes' labels (more_teleop.episode_node)
    names.VLA_COMMAND,  # what the policy proposed while the command mux runs (overridden or not)
]
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
        self._discover()
        self.create_timer(p["discovery_period_s"], self._discover)

    def _discover(self) -> None:
        types = dict(self.get_topic_names_and_types())
        for topic in self.params["topics"]:
            if topic in self._subscribed or topic not in types:
                continue
            type_name = types[topic][0]
            try:
                cls = message_class(type_name)
                self.writer.add_topic(topic, type_name)
            except Exception as err:  # unknown type here: record the others
                self.get_logger().warning(f"cannot record {topic} ({type_name}): {err}")
                self._subscribed[topic] = None
                continue
            qos = qos_for_publishers(self.get_publishers_info_by_topic(topic))
            self._subscribed[topic] = self.create_subscription(
                cls,
                topic,
                lambda raw, t=topic: self._on_message(t, raw),
                qos,
                raw=True,
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
