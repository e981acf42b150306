"""The camera node as its own process: exact frames and camera_info over DDS (image folder, RealSense recording
through librealsense), reconnect after the source stops, and a one-line exit without a device."""

import itertools
import math

import numpy as np
import pytest
from PIL import Image as PILImage

from more_ros.testing import NodeProcess, Probe

from . import realsense_recording as rsrec

pytestmark = pytest.mark.ros


def _listen(probe):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image

    from more_ros import names
    from more_ros.qos import SENSOR_QOS, STATUS_QOS

    return (
        probe.listen(Image, names.CAMERA_IMAGE, SENSOR_QOS),
        probe.listen(CameraInfo, names.CAMERA_INFO, SENSOR_QOS),
        probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS),
    )


def _pixels(msg):
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_image_folder_frames_and_camera_info(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 256, (30, 40, 3), dtype=np.uint8) for i in range(3)]
    for i, f in enumerate(frames):
        PILImage.fromarray(f).save(tmp_path / f"{i:02d}.png")
    proc = NodeProcess(
        "more_vla_policy.camera_node",
        {"source": "folder", "path": str(tmp_path), "width": 0, "height": 0, "fps": 20.0, "hfov_deg": 90.0},
    )
    probe = Probe("camera_probe")
    images, infos, _ = _listen(probe)
    try:
        assert probe.spin_until(lambda: len(images) >= 6 and infos, timeout=30), _stopped(proc)
    finally:
        probe.close()
        err = _stopped(proc)
    assert "Traceback" not in err
    first = images[0]
    assert (first.encoding, first.width, first.height, first.step) == ("rgb8", 40, 30, 120)
    assert first.header.frame_id == "camera_color_optical_frame"
    known = [f.tobytes() for f in frames]
    seq = [known.index(bytes(m.data)) for m in images]  # every frame is one of the folder's, bit-exact
    assert all(b == (a + 1) % 3 for a, b in itertools.pairwise(seq)), seq  # in order, looping
    info = infos[0]
    assert (info.width, info.height, info.distortion_model) == (40, 30, "plumb_bob")
    assert list(info.k) == pytest.approx([20.0, 0, 19.5, 0, 20.0, 14.5, 0, 0, 1])  # f = 20 / tan(45 deg)
    assert info.header.frame_id == "camera_color_optical_frame"


def test_realsense_recording_then_reconnect(tmp_path):
    path = rsrec.record(tmp_path / "rs.db3", n_frames=5, width=64, height=48)
    proc = NodeProcess(
        "more_vla_policy.camera_node",
        {
            "source": "realsense",
            "path": str(path),
            "width": 64,
            "height": 48,
            "fps": 30.0,
            "timeout_ms": 300,
            "reconnect_period_s": 0.2,
        },
    )
    probe = Probe("realsense_probe")
    images, infos, diags = _listen(probe)

    def reconnected():
        msgs = [s.message for d in diags for s in d.status]
        return any(m.startswith("disconnected") for m in msgs) and "reconnected" in msgs and len(images) >= 7

    try:
        ok = probe.spin_until(reconnected, timeout=40)
    finally:
        probe.close()
        err = _stopped(proc)
    assert ok, f"images {len(images)}, diagnostics {[s.message for d in diags for s in d.status]}: {err[-1500:]}"
    # the recording's frames, bit-exact, in order, then again from the start after the reconnect
    ids = [int(_pixels(m)[0, 0, 0]) // 10 for m in images]
    for m, i in zip(images, ids, strict=True):
        np.testing.assert_array_equal(_pixels(m), rsrec.frame(i, 64, 48))
    # (the first frames may go out before discovery matched the probe: best-effort sensor QoS)
    starts = [0, *(k for k in range(1, len(ids)) if ids[k] <= ids[k - 1])]
    runs = [ids[a:b] for a, b in zip(starts, [*starts[1:], len(ids)], strict=True)]
    assert len(runs) >= 2, ids  # played, disconnected at the end, re-opened (a starved CPU may loop once more)
    for k, run in enumerate(runs):
        assert run == list(range(run[0], run[0] + len(run))), ids  # consecutive frames, none skipped
        assert k == len(runs) - 1 or run[-1] == 4, ids  # each pass to the end of the recording
        assert k == 0 or run[0] <= 1, ids  # re-opened: from the start again (librealsense may drop the first)
    info = infos[0]
    assert list(info.k) == pytest.approx([rsrec.FX, 0, rsrec.PPX, 0, rsrec.FY, rsrec.PPY, 0, 0, 1])
    assert list(info.d) == pytest.approx(rsrec.COEFFS)
    error = next(s for d in diags for s in d.status if s.message.startswith("disconnected"))
    assert error.level == b"\x02" and error.name == "more_vla_policy: camera_node"


def test_no_realsense_ends_with_one_clear_line():
    proc = NodeProcess("more_vla_policy.camera_node", {"source": "realsense"})
    proc.wait(60)
    err = proc.output()
    assert proc.returncode == 2
    assert "no RealSense device found" in err and "Traceback" not in err
    assert math.isfinite(len(err)) and len(err.strip().splitlines()) == 1


def _stopped(node: NodeProcess) -> str:
    node.stop()
    return node.output()


def test_a_shutdown_under_the_capture_thread_ends_it_quietly(tmp_path):
    """SIGTERM shuts the rclpy context down before destroy_node stops the capture thread: the thread must end
    without an exception (it printed a traceback into the stack's log when a stack stopped mid-frame)."""
    import contextlib
    import threading
    import time

    import rclpy

    from more_vla_policy.camera_node import CameraNode

    PILImage.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "00.png")
    errors = []
    previous = threading.excepthook
    threading.excepthook = errors.append
    args = ["--ros-args", "-p", "source:=folder", "-p", f"path:={tmp_path}", "-p", "fps:=200.0"]
    rclpy.init(args=args)
    node = None
    try:
        node = CameraNode()
        deadline = time.monotonic() + 10
        while node.frames_published < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert node.frames_published >= 3
        rclpy.shutdown()  # what the signal handler does, before anything sets the node's stop event
        node._thread.join(timeout=5)
        assert not node._thread.is_alive()
        assert errors == []
    finally:
        threading.excepthook = previous
        if node is not None:
            node._stop.set()
            with contextlib.suppress(Exception):
                node.destroy_node()
        with contextlib.suppress(Exception):
            rclpy.shutdown()
