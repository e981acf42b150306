"""bag_player decodes compressed camera frames: the policy's Image subscription receives them as rgb8."""

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from more_ros import names
from more_ros.qos import SENSOR_QOS
from more_ros.testing import NodeProcess, Probe
from more_vla_policy.replay import bag_io

pytestmark = pytest.mark.ros


def test_compressed_frames_are_published_as_rgb8_images(tmp_path):
    from sensor_msgs.msg import Image

    store = bag_io.make_typestore()
    CompressedImage = store.types["sensor_msgs/msg/CompressedImage"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "compressed"
    topic = names.CAMERA_IMAGE + "/compressed"
    with bag_io.BagWriter(path, storage="mcap", typestore=store) as writer:
        writer.add_topic(topic, "sensor_msgs/msg/CompressedImage")
        for i, rgb in enumerate(frames):
            buf = io.BytesIO()
            PILImage.fromarray(rgb).save(buf, format="PNG")  # lossless: decoded pixels must match exactly
            header = Header(stamp=Time(sec=i, nanosec=0), frame_id=names.CAMERA_OPTICAL_FRAME)
            msg = CompressedImage(header=header, format="png", data=np.frombuffer(buf.getvalue(), np.uint8))
            writer.write(topic, 1_000_000 + i * 50_000_000, msg)

    probe = Probe("player_probe")
    got = probe.listen(Image, names.CAMERA_IMAGE, SENSOR_QOS)
    proc = NodeProcess("more_vla_policy.replay.player_node", {"bag": str(path), "start_delay_s": 0.5, "rate": 0.5})
    try:
        assert probe.spin_until(lambda: len(got) >= 3, timeout=60), f"received {len(got)} images"
    finally:
        err = _stopped(proc)
        probe.close()
    assert "Traceback" not in err, err
    for msg, rgb in zip(got[:3], frames, strict=True):
        assert msg.encoding == "rgb8" and (msg.height, msg.width, msg.step) == (6, 8, 24)
        np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), np.uint8).reshape(6, 8, 3), rgb)
        assert msg.header.frame_id == names.CAMERA_OPTICAL_FRAME


def _stopped(node: NodeProcess) -> str:
    node.stop()
    return node.output()
