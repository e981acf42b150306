"""Camera sources: synthetic, image folder, video file (lossless FFV1), RealSense through real librealsense
(playback of a software-device recording) and the no-device error."""

import math

import numpy as np
import pytest
from PIL import Image

from more_vla_policy import camera_sources as cs

from . import realsense_recording as rsrec


def test_fov_intrinsics_by_hand():
    intr = cs.intrinsics_from_fov(640, 480, 90.0)
    assert intr.fx == pytest.approx(320.0) and intr.fy == pytest.approx(320.0)  # tan(45 deg) = 1
    assert (intr.cx, intr.cy) == (319.5, 239.5)
    assert intr.k == pytest.approx([320.0, 0, 319.5, 0, 320.0, 239.5, 0, 0, 1])
    assert intr.p[3] == 0.0 and intr.p[10] == 1.0
    d435 = cs.intrinsics_from_fov(640, 480)
    assert d435.fx == pytest.approx(320.0 / math.tan(math.radians(34.5)))
    with pytest.raises(ValueError, match="hfov_deg"):
        cs.intrinsics_from_fov(640, 480, 180.0)


def test_synthetic_frames_differ_and_have_the_size():
    src = cs.make_source("synthetic", width=32, height=16)
    intr = src.open()
    a, b = src.read(), src.read()
    assert a.shape == (16, 32, 3) and a.dtype == np.uint8 and (intr.width, intr.height) == (32, 16)
    assert a[0, 0, 2] == 0 and b[0, 0, 2] == 1


def test_image_folder_in_name_order_loops_and_ends(tmp_path):
    frames = [np.full((6, 8, 3), 40 * i, np.uint8) for i in range(3)]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"img_{i:03d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    src = cs.make_source("folder", path=str(tmp_path), loop=True, width=0, height=0)
    assert src.open().width == 8
    got = [src.read()[0, 0, 0] for _ in range(4)]
    assert got == [0, 40, 80, 0]
    once = cs.make_source("folder", path=str(tmp_path), loop=False, width=4, height=3)
    once.open()
    assert once.read().shape == (3, 4, 3)
    once.read(), once.read()
    with pytest.raises(cs.CameraDisconnectedError, match="end of image folder"):
        once.read()


def test_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(cs.CameraError, match="does not exist"):
        cs.make_source("folder", path=str(tmp_path / "nope")).open()
    with pytest.raises(cs.CameraError, match="holds no"):
        cs.make_source("folder", path=str(tmp_path)).open()
    with pytest.raises(cs.CameraError, match="needs a path"):
        cs.make_source("video")
    with pytest.raises(cs.CameraError, match="unknown camera source 'webcam'"):
        cs.make_source("webcam")
    with pytest.raises(cs.CameraError, match="does not exist"):
        cs.make_source("video", path=str(tmp_path / "x.avi")).open()


def test_video_file_frames_are_exact_with_a_lossless_codec(tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    frames = [np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8) for i in range(3)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (32, 24))
    for f in frames:
        writer.write(np.ascontiguousarray(f[:, :, ::-1]))  # OpenCV writes BGR
    writer.release()
    src = cs.make_source("video", path=str(path), loop=True)
    intr = src.open()
    assert (intr.width, intr.height) == (32, 24)
    for f in [*frames, frames[0]]:  # loops back to the first frame
        np.testing.assert_array_equal(src.read(), f)
    src.close()
    once = cs.make_source("video", path=str(path), loop=False)
    once.open()
    for _ in frames:
        once.read()
    with pytest.raises(cs.CameraDisconnectedError, match="end of video"):
        once.read()


def test_realsense_without_a_device_says_so(monkeypatch):
    import pyrealsense2 as rs

    if len(rs.context().query_devices()) > 0:
        pytest.fail("this test expects no RealSense to be plugged in")
    with pytest.raises(cs.CameraError, match="no RealSense device found: plug the D435"):
        cs.make_source("realsense").open()


def test_realsense_recording_plays_through_the_pipeline(tmp_path):
    path = rsrec.record(tmp_path / "rec.db3", n_frames=6, width=64, height=48)
    src = cs.make_source("realsense", path=str(path), width=64, height=48, fps=30, timeout_ms=500)
    intr = src.open()
    assert (intr.width, intr.height) == (64, 48)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == pytest.approx((rsrec.FX, rsrec.FY, rsrec.PPX, rsrec.PPY))
    assert intr.distortion_model == "plumb_bob"
    assert intr.coeffs == pytest.approx(rsrec.COEFFS)
    got = []
    with pytest.raises(cs.CameraDisconnectedError, match="no RealSense frame within 500 ms"):
        for _ in range(20):
            got.append(src.read())
    # recorded frames, bit-exact, in order, to the end of the recording
    ids = [int(f[0, 0, 0]) // 10 for f in got]
    for f, i in zip(got, ids, strict=True):
        np.testing.assert_array_equal(f, rsrec.frame(i, 64, 48))
    assert ids == list(range(ids[0], 6)) and ids[0] <= 1, ids  # (librealsense may drop the very first frame)
    src.close()
    # re-opening after the "unplug" plays the recording again from its start (what the node's reconnect does)
    src.open()
    again = [int(src.read()[0, 0, 0]) // 10 for _ in range(3)]
    assert again == list(range(again[0], again[0] + 3)) and again[0] <= 1, again
    src.close()


def test_realsense_wrong_mode_is_a_clear_error(tmp_path):
    path = rsrec.record(tmp_path / "rec.db3", n_frames=2, width=64, height=48)
    with pytest.raises(cs.CameraError, match="colour stream 640x480 rgb8 @ 30 fps failed to start"):
        cs.make_source("realsense", path=str(path), width=640, height=480).open()
