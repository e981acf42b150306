"""Frame sources for the camera node, without ROS: RealSense (pyrealsense2), video file, image folder, synthetic.

[Contract]
- Every source: `open() -> Intrinsics`, `read() -> np.ndarray` (HxWx3 uint8 RGB, blocking up to the source's
  timeout), `close()`. Sources are used from one thread.
- Errors a person must act on raise `CameraError` with a message that says what to do (no device, missing
  package, unreadable file). `CameraDisconnectedError` (a CameraError) means a source that worked stopped
  delivering (unplugged camera, end of a non-looping file): the node reports it and retries `open()`.
- RealSense: colour stream `width` x `height` rgb8 at `fps`, intrinsics from the device (realsense-ros maps
  the Brown-Conrady family to `plumb_bob`, Kannala-Brandt to `equidistant`; so do we). `playback_file` plays a
  RealSense recording (.db3, as pyrealsense2 2.59 writes it) through the same pipeline instead of a device.
- File sources have no calibration: their intrinsics come from a horizontal field of view (`hfov_deg`,
  default the D435 colour camera's 69 deg) with square pixels and the principal point at the centre.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

D435_COLOR_HFOV_DEG = 69.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")
PYREALSENSE_PIN = "pyrealsense2==2.59.1.11053"
OPENCV_PIN = "opencv-python-headless==4.13.0.92"


class CameraError(RuntimeError):
    """The source cannot deliver frames; the message says why and what to do."""


class CameraDisconnectedError(CameraError):
    """A source that worked stopped delivering frames (unplugged, end of file); retry open()."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in the form of sensor_msgs/CameraInfo."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = "plumb_bob"
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def k(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    @property
    def p(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]

    @property
    def r(self) -> list[float]:
        return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def intrinsics_from_fov(width: int, height: int, hfov_deg: float = D435_COLOR_HFOV_DEG) -> Intrinsics:
    """Square-pixel pinhole intrinsics for an image of `width` x `height` with horizontal FOV `hfov_deg`."""
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return Intrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def _fit(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to width x height if both are set (> 0) and differ from the frame's size."""
    if width <= 0 or height <= 0 or rgb.shape[:2] == (height, width):
        return rgb
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR))


class SyntheticSource:
    """A moving colour pattern (no files, no device): benchmarks and tests."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, hfov_deg: float = 69.0) -> None:
        self.width, self.height, self.fps, self.hfov_deg = width, height, fps, hfov_deg
        self._n = 0
        yy, xx = np.mgrid[0:height, 0:width]
        self._base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), xx * 0], axis=2)

    def open(self) -> Intrinsics:
        return intrinsics_from_fov(self.width, self.height, self.hfov_deg)

    def read(self) -> np.ndarray:
        frame = self._base.copy()
        frame[:, :, 2] = self._n % 256  # the blue channel counts frames: a receiver can tell frames apart
        self._n += 1
        return frame.astype(np.uint8)

    def close(self) -> None:
        pass


class ImageFolderSource:
    """The images of a folder in name order (png/jpg/bmp/ppm), optionally looping."""

    def __init__(
        self, path: str | Path, loop: bool = True, width: int = 0, height: int = 0, hfov_deg: float = 69.0
    ) -> None:
        self.path = Path(path)
        self.loop, self.width, self.height, self.hfov_deg = loop, width, height, hfov_deg
        self._files: list[Path] = []
        self._i = 0

    def open(self) -> Intrinsics:
        if not self.path.is_dir():
            raise CameraError(f"image folder {self.path} does not exist or is not a folder")
        self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CameraError(f"image folder {self.path} holds no {'/'.join(IMAGE_SUFFIXES)} files")
        self._i = 0
        first = self._load(self._files[0])
        return intrinsics_from_fov(first.shape[1], first.shape[0], self.hfov_deg)

    def _load(self, path: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                rgb = np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise CameraError(f"cannot read image {path}: {err}") from err
        return _fit(rgb, self.width, self.height)

    def read(self) -> np.ndarray:
        if self._i >= len(self._files):
            if not self.loop or not self._files:
                raise CameraDisconnectedError(f"end of image folder {self.path}")
            self._i = 0
        frame = self._load(self._files[self._i])
        self._i += 1
        return frame

    def close(self) -> None:
        self._files = []


class VideoFileSource:
    """Frames of a video file decoded with OpenCV (opencv-python-headless), optionally looping."""

    def __init__(
        self, path: str | Path, loop: bool = True, width: int = 0, height: int = 0, hfov_deg: float = 69.0
    ) -> None:
        self.path = Path(path)
        self.loop, self.width, self.height, self.hfov_deg = loop, width, height, hfov_deg
        self._cap = None

    def open(self) -> Intrinsics:
        try:
            import cv2
        except ImportError as err:
            raise CameraError(f"video files need OpenCV: pip install {OPENCV_PIN} ({err})") from err
        if not self.path.is_file():
            raise CameraError(f"video file {self.path} does not exist")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise CameraError(f"OpenCV cannot open video file {self.path}")
        self._cap = cap
        w = self.width or int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = self.height or int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return intrinsics_from_fov(w, h, self.hfov_deg)

    def read(self) -> np.ndarray:
        import cv2

        if self._cap is None:
            raise CameraDisconnectedError(f"video file {self.path} is not open")
        ok, bgr = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        if not ok:
            raise CameraDisconnectedError(f"end of video file {self.path}")
        return _fit(np.ascontiguousarray(bgr[:, :, ::-1]), self.width, self.height)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# realsense-ros's mapping of librealsense distortion models to CameraInfo's names.
_RS_DISTORTION = {
    "brown_conrady": "plumb_bob",
    "inverse_brown_conrady": "plumb_bob",
    "modified_brown_conrady": "plumb_bob",
    "kannala_brandt4": "equidistant",
    "ftheta": "equidistant",
    "none": "plumb_bob",
}


def intrinsics_from_realsense(intr: object) -> Intrinsics:
    """pyrealsense2.intrinsics -> Intrinsics (distortion model named as realsense-ros names it)."""
    model = str(getattr(intr, "model", "none")).split(".")[-1]
    coeffs: Sequence[float] = list(getattr(intr, "coeffs", [0.0] * 5))
    return Intrinsics(
        width=int(intr.width),
        height=int(intr.height),
        fx=float(intr.fx),
        fy=float(intr.fy),
        cx=float(intr.ppx),
        cy=float(intr.ppy),
        distortion_model=_RS_DISTORTION.get(model, "plumb_bob"),
        coeffs=tuple(float(c) for c in coeffs),
    )


class RealSenseSource:
    """The colour stream of an Intel RealSense (D435) through pyrealsense2, or a RealSense recording."""

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        serial: str = "",
        timeout_ms: int = 1000,
        playback_file: str = "",
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.serial, self.timeout_ms, self.playback_file = serial, timeout_ms, playback_file
        self._rs = None
        self._pipeline = None

    def _import(self):
        try:
            import pyrealsense2 as rs
        except ImportError as err:
            raise CameraError(
                f"the RealSense source needs pyrealsense2 (pip install {PYREALSENSE_PIN}; it loads "
                f"libusb-1.0: apt-get install libusb-1.0-0): {err}"
            ) from err
        return rs

    def open(self) -> Intrinsics:
        rs = self._rs = self._import()
        config = rs.config()
        if self.playback_file:
            if not Path(self.playback_file).is_file():
                raise CameraError(f"RealSense recording {self.playback_file} does not exist")
            config.enable_device_from_file(self.playback_file, repeat_playback=False)
        else:
            devices = rs.context().query_devices()
            serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
            if not serials:
                raise CameraError(
                    "no RealSense device found: plug the D435 into a USB 3 port, check `lsusb` and the "
                    "librealsense udev rules, or use source:=video/folder/synthetic"
                )
            if self.serial and self.serial not in serials:
                raise CameraError(f"no RealSense with serial {self.serial!r}; connected: {serials}")
            if self.serial:
                config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as err:
            raise CameraError(
                f"RealSense colour stream {self.width}x{self.height} rgb8 @ {self.fps} fps failed to start: {err}"
            ) from err
        if self.playback_file:
            # Deliver every recorded frame, paced by our reads, not by the recording's clock.
            profile.get_device().as_playback().set_real_time(False)
        self._pipeline = pipeline
        stream = profile.get_stream(rs.stream.color).as_video_stream_profile()
        return intrinsics_from_realsense(stream.get_intrinsics())

    def read(self) -> np.ndarray:
        if self._pipeline is None:
            raise CameraDisconnectedError("RealSense pipeline is not running")
        try:
            frames = self._pipeline.wait_for_frames(self.timeout_ms)
        except RuntimeError as err:
            # librealsense raises RuntimeError("Frame didn't arrive within ...") when unplugged or at the end.
            raise CameraDisconnectedError(f"no RealSense frame within {self.timeout_ms} ms: {err}") from err
        color = frames.get_color_frame()
        if not color:
            raise CameraDisconnectedError("RealSense frame set without a colour frame")
        return np.array(np.asanyarray(color.get_data()), dtype=np.uint8, copy=True)

    def close(self) -> None:
        if self._pipeline is not None:
            with contextlib.suppress(RuntimeError):  # already stopped (device gone): nothing to release
                self._pipeline.stop()
            self._pipeline = None


SOURCES = ("realsense", "video", "folder", "synthetic")


def make_source(
    kind: str,
    path: str = "",
    width: int = 0,
    height: int = 0,
    fps: float = 30.0,
    loop: bool = True,
    serial: str = "",
    timeout_ms: int = 1000,
    hfov_deg: float = D435_COLOR_HFOV_DEG,
) -> SyntheticSource | ImageFolderSource | VideoFileSource | RealSenseSource:
    """Build a source by name; `path` is the video file / image folder / RealSense recording (optional).

    width/height 0 mean: the file's own size, and 640x480 for the RealSense.
    """
    if kind == "realsense":
        return RealSenseSource(width or 640, height or 480, round(fps), serial, timeout_ms, playback_file=path)
    if kind in ("video", "folder") and not path:
        raise CameraError(f"source {kind!r} needs a path")
    if kind == "video":
        return VideoFileSource(path, loop, width, height, hfov_deg)
    if kind == "folder":
        return ImageFolderSource(path, loop, width, height, hfov_deg)
    if kind == "synthetic":
        return SyntheticSource(width or 640, height or 480, fps, hfov_deg)
    raise CameraError(f"unknown camera source {kind!r} (one of {list(SOURCES)})")


def wait_period(next_due: float, period: float) -> float:
    """Sleep until `next_due` (monotonic) and return the next due time; never schedules into the past."""
    now = time.monotonic()
    if next_due > now:
        time.sleep(next_due - now)
        return next_due + period
    return now + period
