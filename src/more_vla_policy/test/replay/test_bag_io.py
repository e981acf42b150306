"""Bag I/O: QuadrupedCommand (a more_msgs type) written as raw rclpy CDR and as rosbags objects to MCAP and
sqlite3, read back with the bag's own definitions; Image/CompressedImage decoding."""

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from more_vla_policy.policy_core import image_to_rgb
from more_vla_policy.replay import bag_io

ACTION = [0.42, -0.1, 0.3, 0.5, 0.0, 0.0, 2.75, -0.05, 0.1, 0.3, 0.12, 1.0]
BINS = list(range(10, 130, 10))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rclpy_cdr_round_trip(tmp_path, storage):
    from rclpy.serialization import serialize_message

    from more_ros.convert import command_to_msg, msg_to_command

    msg = command_to_msg(np.array(ACTION), bins=BINS, q_values=[0.25] * 12)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
    path = tmp_path / "bag"
    with bag_io.BagWriter(path, storage=storage) as writer:
        writer.add_topic("/more/command", "more_msgs/msg/QuadrupedCommand")
        for i in range(3):
            writer.write_raw("/more/command", 1_000 + i, serialize_message(msg))
    assert bag_io.bag_topics(path) == {"/more/command": "more_msgs/msg/QuadrupedCommand"}
    got = list(bag_io.read_messages(path))
    assert [t for _, _, t, _ in got] == [1000, 1001, 1002]
    m = got[0][3]
    np.testing.assert_allclose(msg_to_command(m), np.float32(ACTION), rtol=0, atol=1e-7)
    assert list(m.bins) == BINS and np.allclose(m.q_values, 0.25)
    assert bag_io.stamp_ns(m.header) == 12_000_000_345 and m.header.frame_id == "base_link"


def test_rosbags_objects_and_images(tmp_path):
    store = bag_io.make_typestore()
    Image = store.types["sensor_msgs/msg/Image"]
    CompressedImage = store.types["sensor_msgs/msg/CompressedImage"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    header = Header(stamp=Time(sec=1, nanosec=2), frame_id="camera_color_optical_frame")
    raw = Image(header=header, height=4, width=5, encoding="bgr8", is_bigendian=0, step=15, data=bgr.reshape(-1))
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="PNG")
    comp = CompressedImage(header=header, format="png", data=np.frombuffer(buf.getvalue(), np.uint8))
    path = tmp_path / "rs"
    with bag_io.BagWriter(path, storage="sqlite3", typestore=store) as writer:
        writer.add_topic("/camera/camera/color/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic("/camera/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
        writer.write("/camera/camera/color/image_raw", 5, raw)
        writer.write("/camera/camera/color/image_raw/compressed", 6, comp)
    (_, t1, _, m1), (_, t2, _, m2) = bag_io.read_messages(path)
    img1 = bag_io.image_from_bag_msg(m1, t1)
    img2 = bag_io.image_from_bag_msg(m2, t2)
    assert img1.stamp_ns == 1_000_000_002 and img1.encoding == "bgr8"
    np.testing.assert_array_equal(image_to_rgb(img1), rgb)
    np.testing.assert_array_equal(image_to_rgb(img2), rgb)


def test_errors_name_the_bag(tmp_path):
    with pytest.raises(bag_io.BagError, match="cannot read bag"):
        bag_io.bag_topics(tmp_path / "missing")
    (tmp_path / "exists").mkdir()
    with pytest.raises(bag_io.BagError, match="cannot create bag"):
        bag_io.BagWriter(tmp_path / "exists")
    with pytest.raises(bag_io.BagError, match="storage must be one of"):
        bag_io.BagWriter(tmp_path / "x", storage="zip")
