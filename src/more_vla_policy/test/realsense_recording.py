"""Write a genuine RealSense recording without a camera: a pyrealsense2 software device behind an
rs.recorder. Playing it back goes through the same pipeline calls as a D435 (start, wait_for_frames,
get_color_frame, get_intrinsics), so the RealSense source is tested on real librealsense code."""

import time
from pathlib import Path

import numpy as np

FX, FY, PPX, PPY = 50.0, 51.0, 31.5, 23.25
COEFFS = [0.1, -0.2, 0.001, 0.002, 0.03]


def frame(i: int, width: int, height: int) -> np.ndarray:
    """The i-th test frame: its value identifies it."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 0] = (i * 10) % 256
    img[:, :, 1] = np.arange(width, dtype=np.uint8)[None, :]
    img[:, :, 2] = np.arange(height, dtype=np.uint8)[:, None]
    return img


def record(path: Path, n_frames: int = 8, width: int = 64, height: int = 48, fps: int = 30) -> Path:
    import pyrealsense2 as rs

    dev = rs.software_device()
    sensor = dev.add_sensor("Color")
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = width, height, FX, FY, PPX, PPY
    intr.model = rs.distortion.brown_conrady
    intr.coeffs = COEFFS
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid = rs.stream.color, 0, 0
    vs.width, vs.height, vs.fps, vs.bpp, vs.fmt, vs.intrinsics = width, height, fps, 3, rs.format.rgb8, intr
    profile = sensor.add_video_stream(vs)
    dev.register_info(rs.camera_info.name, "software D435")
    dev.register_info(rs.camera_info.serial_number, "000000000001")
    recorder = rs.recorder(str(path), dev)
    rec_sensor = recorder.query_sensors()[0]
    received: list[int] = []
    rec_sensor.open(rec_sensor.get_stream_profiles()[0])
    rec_sensor.start(lambda f: received.append(f.get_frame_number()))
    for i in range(n_frames):
        f = rs.software_video_frame()
        f.pixels = frame(i, width, height)
        f.bpp, f.stride = 3, width * 3
        f.timestamp, f.domain, f.frame_number = i * 1000.0 / fps, rs.timestamp_domain.system_time, i
        f.profile = profile.as_video_stream_profile()
        sensor.on_video_frame(f)
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while len(received) < n_frames and time.monotonic() < deadline:
        time.sleep(0.01)
    rec_sensor.stop()
    rec_sensor.close()
    del rec_sensor, recorder  # the recorder writes the file when it is released
    assert path.is_file(), "pyrealsense2 wrote no recording"
    return path
