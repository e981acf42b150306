"""A stand-alone process for the cross-process DDS test: `publish` or `subscribe` a QuadrupedCommand.

publish:   sends the reference command every 50 ms until killed (or 30 s).
subscribe: waits for one command, prints it as JSON on stdout and exits 0 (exit 3 on timeout).
"""

import json
import math
import sys
import time

import numpy as np
import rclpy

from more_msgs.msg import QuadrupedCommand
from more_ros.convert import command_to_msg, msg_to_command
from more_ros.names import COMMAND
from more_ros.qos import COMMAND_QOS

REFERENCE_ACTION = [0.42, -0.1, 0.3, 0.5, 0.0, 0.0, 2.75, -0.05, 0.1, 0.3, 0.12, 0.0]
REFERENCE_BINS = list(range(10, 130, 10))
REFERENCE_Q = [0.5 + 0.01 * i for i in range(11)] + [math.nan]


def publish() -> int:
    rclpy.init()
    node = rclpy.create_node("dds_peer_publisher")
    pub = node.create_publisher(QuadrupedCommand, COMMAND, COMMAND_QOS)
    msg = command_to_msg(np.array(REFERENCE_ACTION), bins=REFERENCE_BINS, q_values=REFERENCE_Q)
    end = time.monotonic() + 30
    try:
        while time.monotonic() < end:
            pub.publish(msg)
            rclpy.spin_once(node, timeout_sec=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def subscribe() -> int:
    rclpy.init()
    node = rclpy.create_node("dds_peer_subscriber")
    got = []
    node.create_subscription(QuadrupedCommand, COMMAND, got.append, COMMAND_QOS)
    end = time.monotonic() + 30
    while not got and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)

    # who offers the topic, as ROS discovery reports it (the sender must be the other process's node); node names
    # arrive on their own discovery topic, possibly after the first message
    def publishers() -> list[str]:
        return sorted(i.node_name for i in node.get_publishers_info_by_topic(COMMAND))

    end = time.monotonic() + 10
    while "_NODE_NAME_UNKNOWN_" in publishers() and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    publishers = publishers()
    node.destroy_node()
    rclpy.try_shutdown()
    if not got:
        return 3
    msg = got[0]
    print(
        json.dumps(
            {
                "action": msg_to_command(msg).tolist(),
                "bins": [int(b) for b in msg.bins],
                "q_values": [None if math.isnan(q) else float(q) for q in msg.q_values],
                "frame_id": msg.header.frame_id,
                "publishers": publishers,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit({"publish": publish, "subscribe": subscribe}[sys.argv[1]]())
