"""rosbag2 (MCAP or sqlite3) reading and writing with the pure-Python `rosbags` library, more_msgs included.

[Contract]
- `make_typestore()`: the ROS 2 Jazzy typestore plus the more_msgs types, registered from the package's .msg
  files (found through the ament index, as installed by colcon). Writing a more_msgs topic needs it; reading
  does not, because bags written here (and by `ros2 bag record`) carry their message definitions.
- `BagWriter(path)`: a thread-safe writer (MCAP by default) taking either rosbags message objects or raw CDR
  bytes as rclpy hands them out (`serialize_message`, raw subscriptions): the stack records without
  deserialising. Bags it writes play with `ros2 bag play`.
- `read_messages(path, topics)`: (topic, msgtype, log_time_ns, message) in log-time order, deserialised with
  the bag's own definitions (realsense-ros bags, the stack's bags, bags of `ros2 bag record`).
- A bag that cannot be read (missing, truncated, a corrupt length or string field, an undecodable message)
  raises BagError naming the path, whatever exception the reader hit.
- `image_from_bag_msg(msg)`: a deserialised sensor_msgs/Image or CompressedImage -> RawImage for the core.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from more_vla_policy.policy_core import ImageError, RawImage, rgb_to_raw

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
MORE_MSGS_PACKAGE = "more_msgs"


class BagError(RuntimeError):
    """A bag that cannot be read or written; the message names the path and the cause."""


def more_msgs_definitions() -> dict[str, str]:
    """{'more_msgs/msg/Name': .msg text} from the installed more_msgs package."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError as err:
        raise BagError(f"ament_index_python is needed to find the more_msgs definitions: {err}") from err
    try:
        share = Path(get_package_share_directory(MORE_MSGS_PACKAGE))
    except PackageNotFoundError as err:
        raise BagError("more_msgs is not installed (source install/setup.bash after colcon build)") from err
    defs = {f"{MORE_MSGS_PACKAGE}/msg/{p.stem}": p.read_text() for p in sorted((share / "msg").glob("*.msg"))}
    if not defs:
        raise BagError(f"no .msg files under {share / 'msg'}")
    return defs


def make_typestore(with_more_msgs: bool = True):  # noqa: ANN201 - rosbags Typestore
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    if with_more_msgs:
        types: dict = {}
        for name, text in more_msgs_definitions().items():
            types.update(get_types_from_msg(text, name))
        store.register(types)
    return store


class BagWriter:
    """Write messages to a new rosbag2 directory; call `close()` (or use as a context manager)."""

    def __init__(self, path: str | Path, storage: str = "mcap", typestore: Any = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise BagError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
        self.path = Path(path)
        self.typestore = typestore if typestore is not None else make_typestore()
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
            self._writer.open()
        except WriterError as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from err
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str) -> None:
        with self._lock:
            if topic not in self._connections:
                self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
                self.counts[topic] = 0

    def topic_type(self, topic: str) -> str | None:
        conn = self._connections.get(topic)
        return None if conn is None else conn.msgtype

    def write_raw(self, topic: str, log_time_ns: int, cdr: bytes | memoryview) -> None:
        """Write already-serialised CDR (with its 4-byte encapsulation header, as rclpy produces it)."""
        with self._lock:
            if self._writer is None:
                return  # closed while a callback was in flight: drop, never crash the recorder
            self._writer.write(self._connections[topic], int(log_time_ns), cdr)
            self.counts[topic] += 1

    def write(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Write a rosbags message object (types from `self.typestore`)."""
        msgtype = self._connections[topic].msgtype
        self.write_raw(topic, log_time_ns, self.typestore.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bag_error(path: str | Path, err: BaseException) -> BagError:
    # rosbags reports damage with its own ReaderErrors but also with whatever its parsers hit on a corrupt length
    # or string field (OverflowError, MemoryError, UnicodeDecodeError, struct.error, ...): all mean a bad file
    from more_common.errors import one_line

    return BagError(f"cannot read bag {path}: {type(err).__name__}: {one_line(err, 200)}")


def bag_topics(path: str | Path) -> dict[str, str]:
    """{topic: msgtype} of a bag."""
    from rosbags.highlevel import AnyReader

    try:
        with AnyReader([Path(path)]) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    except Exception as err:  # see _bag_error
        raise _bag_error(path, err) from err


def read_messages(
    path: str | Path, topics: Iterable[str] | None = None, raw: bool = False
) -> Iterator[tuple[str, str, int, Any]]:
    """Yield (topic, msgtype, log_time_ns, message) in log-time order for the given topics (all if None);
    with `raw` the message is the stored CDR bytes (for rclpy's deserialize_message)."""
    from rosbags.highlevel import AnyReader

    wanted = None if topics is None else set(topics)
    try:
        with AnyReader([Path(path)]) as reader:
            conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
            for conn, timestamp, data in reader.messages(connections=conns):
                msg = bytes(data) if raw else reader.deserialize(data, conn.msgtype)
                yield conn.topic, conn.msgtype, int(timestamp), msg
    except Exception as err:  # the reader's and deserialiser's errors only: the consumer's are not thrown in here
        raise _bag_error(path, err) from err


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def image_from_bag_msg(msg: Any, msgtype: str = IMAGE_TYPE) -> RawImage:
    """A deserialised Image / CompressedImage -> RawImage (compressed images are decoded with Pillow)."""
    if msgtype == COMPRESSED_IMAGE_TYPE:
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(bytes(msg.data))) as img:
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise ImageError(f"cannot decode compressed image ({msg.format}): {err}") from err
        return rgb_to_raw(rgb, stamp_ns(msg.header))
    return RawImage(
        encoding=str(msg.encoding),
        height=int(msg.height),
        width=int(msg.width),
        step=int(msg.step),
        data=np.asarray(msg.data, dtype=np.uint8),
        stamp_ns=stamp_ns(msg.header),
        is_bigendian=int(msg.is_bigendian),
    )
