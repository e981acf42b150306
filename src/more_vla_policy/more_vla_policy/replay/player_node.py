"""bag_player node: play a bag's camera images and instructions back into the running stack (online replay).

Playback starts once `min_subscribers` readers are matched on the images (or after `wait_for_subscriber_s`) plus
`start_delay_s`. Images (from the recorded camera topic, realsense-ros names included) are published on `image_topic`
(default: the stack's camera topic) with the recorded pacing scaled by `rate`, restamped with the current time
so the policy's staleness check and latency figures mean what they mean live. Recorded instructions are
published latched on the instruction topic. Playback runs on its own thread; at the end `done` is set and, with
`exit_when_done`, the process ends with status 0 (how `more-stack replay` knows the bag is played).
`ros2 bag play` replaces this node on a full ROS install.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rclpy.node import Node

from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive

NODE_NAME = "bag_player"
PARAMS = {
    "bag": ("", None, "bag directory (or file) to play"),
    "source_image_topic": ("", None, "recorded image topic (empty: the camera topic, or the bag's only image topic)"),
    "image_topic": (names.CAMERA_IMAGE, None, "topic to publish the images on"),
    "rate": (1.0, positive, "playback speed factor (2.0: twice as fast)"),
    "wait_for_subscriber_s": (30.0, non_negative, "wait up to this long for the image subscribers (0: do not wait)"),
    "min_subscribers": (1, positive, "image subscribers to wait for (the policy; more-stack adds itself, a recorder)"),
    "start_delay_s": (1.0, non_negative, "then wait this long before playing (lets the others connect)"),
    "loop": (False, None, "start again at the end"),
    "restamp": (True, None, "stamp images with the current time (else keep the recorded stamps)"),
    "exit_when_done": (False, None, "end the process (status 0) when the bag has been played (not with loop)"),
}


class BagPlayerNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import String

        from more_ros.qos import LATCHED_QOS, OVERRIDABLE, SENSOR_QOS
        from more_vla_policy.replay.bag_io import BagError, bag_topics
        from more_vla_policy.replay.samples import COMPRESSED_IMAGE_TYPE, choose_image_topic

        p = self.params = declare_parameters(self, PARAMS)
        if not p["bag"]:
            raise ConfigurationError("parameter 'bag' is required: the bag to play")
        try:
            types = bag_topics(Path(p["bag"]))
            self._source = choose_image_topic(types, p["source_image_topic"])
        except (BagError, ValueError) as err:
            raise ConfigurationError(f"bag {p['bag']}: {err}") from err
        # Compressed sources are decoded here: consumers (the policy node) subscribe to sensor_msgs/Image.
        self._compressed = types[self._source] == COMPRESSED_IMAGE_TYPE
        self._image_type = CompressedImage if self._compressed else Image
        self._has_instruction = types.get(names.INSTRUCTION) == "std_msgs/msg/String"
        self._image_pub = self.create_publisher(Image, p["image_topic"], SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self._instruction_pub = self.create_publisher(
            String, names.INSTRUCTION, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.images_published = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="bag_player", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        from rclpy.serialization import deserialize_message
        from std_msgs.msg import String

        from more_vla_policy.replay.bag_io import read_messages

        deadline = time.monotonic() + self.params["wait_for_subscriber_s"]
        while self._image_pub.get_subscription_count() < self.params["min_subscribers"] and time.monotonic() < deadline:
            if self._stop.wait(0.05):
                return
        if self._stop.wait(self.params["start_delay_s"]):
            return
        topics = [self._source] + ([names.INSTRUCTION] if self._has_instruction else [])
        try:
            while not self._stop.is_set():
                first_t, start = None, time.monotonic()
                for topic, _, t, raw in read_messages(Path(self.params["bag"]), topics, raw=True):
                    first_t = t if first_t is None else first_t
                    due = start + (t - first_t) / 1e9 / self.params["rate"]
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        return
                    if topic == names.INSTRUCTION:
                        self._instruction_pub.publish(deserialize_message(raw, String))
                        continue
                    image = deserialize_message(raw, self._image_type)
                    if self._compressed:
                        image = self._decompress(image)
                        if image is None:
                            continue
                    if self.params["restamp"]:
                        image.header.stamp = self.get_clock().now().to_msg()
                    self._image_pub.publish(image)
                    self.images_published += 1
                if not self.params["loop"]:
                    break
        except Exception as err:  # a corrupt bag ends playback, not the process
            if not self._stop.is_set():
                self.get_logger().error(f"playback stopped: {type(err).__name__}: {err}")
        finally:
            self.done.set()
            if self.params["exit_when_done"] and not self._stop.is_set():
                self.get_logger().info(f"played {self.images_published} images: done")
                self.context.try_shutdown()

    def _decompress(self, msg):  # noqa: ANN001 - CompressedImage -> Image, None if undecodable
        from more_ros.convert import image_msg
        from more_vla_policy.policy_core import ImageError, image_to_rgb
        from more_vla_policy.replay.bag_io import COMPRESSED_IMAGE_TYPE, image_from_bag_msg

        try:
            rgb = image_to_rgb(image_from_bag_msg(msg, COMPRESSED_IMAGE_TYPE))
        except ImageError as err:
            self.get_logger().warning(f"skipping an undecodable compressed frame: {err}")
            return None
        return image_msg(rgb, msg.header.frame_id, msg.header.stamp)

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(BagPlayerNode, NODE_NAME, __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
