"""Camera node: publish colour images (rgb8) and camera_info from a RealSense, a video file, an image folder or a
synthetic pattern, on realsense-ros's topic names with its optical frame id and sensor-data QoS.

Capture runs on its own thread (a blocking `wait_for_frames` never stalls the executor). When a working source
stops delivering (camera unplugged, end of a non-looping file) the node logs it, publishes an ERROR on
/diagnostics and re-opens the source every `reconnect_period_s`. A source that cannot open at start-up (no
RealSense plugged in, missing file) ends the node with exit status 2 and one line saying why.
"""

from __future__ import annotations

import contextlib
import threading
import time

from rclpy.node import Node

from more_common.errors import ConfigurationError
from more_ros.convert import image_msg
from more_ros.diagnostics import ERROR as DIAG_ERROR
from more_ros.diagnostics import OK as DIAG_OK
from more_ros.diagnostics import diagnostic_array
from more_ros.names import CAMERA_IMAGE, CAMERA_INFO, CAMERA_OPTICAL_FRAME, DIAGNOSTICS
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive
from more_vla_policy.camera_sources import SOURCES, CameraDisconnectedError, CameraError, make_source
from more_vla_policy.convert import camera_info_msg

NODE_NAME = "camera_node"
PARAMS = {
    "source": ("realsense", lambda v: v in SOURCES, f"frame source: one of {list(SOURCES)}"),
    "path": ("", None, "video file, image folder, or RealSense recording (.db3) to play instead of a device"),
    "width": (640, non_negative, "image width [px] (RealSense stream size; files are resized; 0 = native)"),
    "height": (480, non_negative, "image height [px] (0 = native size of a file)"),
    "fps": (30.0, positive, "frame rate [Hz] (RealSense stream rate; publishing rate of file sources)"),
    "loop": (True, None, "restart a video file / image folder at its end"),
    "serial": ("", None, "RealSense serial number (empty: the first device)"),
    "timeout_ms": (1000, positive, "RealSense frame timeout [ms]; longer silence counts as a disconnect"),
    "reconnect_period_s": (1.0, positive, "seconds between attempts to re-open a source that stopped"),
    "hfov_deg": (69.0, lambda v: 0 < v < 180, "horizontal field of view for file sources [deg] (D435: 69)"),
    "frame_id": (CAMERA_OPTICAL_FRAME, None, "header.frame_id of image and camera_info"),
    "image_topic": (CAMERA_IMAGE, None, "image topic (realsense-ros default)"),
    "camera_info_topic": (CAMERA_INFO, None, "camera_info topic (realsense-ros default)"),
}


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image

        from more_ros.qos import OVERRIDABLE, SENSOR_QOS, STATUS_QOS

        p = self.params = declare_parameters(self, PARAMS)
        try:
            self._source = make_source(
                p["source"],
                path=p["path"],
                width=p["width"],
                height=p["height"],
                fps=p["fps"],
                loop=p["loop"],
                serial=p["serial"],
                timeout_ms=p["timeout_ms"],
                hfov_deg=p["hfov_deg"],
            )
            self._intrinsics = self._source.open()
        except CameraError as err:
            raise ConfigurationError(f"camera source {p['source']!r}: {err}") from err
        self._image_pub = self.create_publisher(Image, p["image_topic"], SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self._info_pub = self.create_publisher(
            CameraInfo, p["camera_info_topic"], SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.frames_published = 0
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name="camera_capture", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"{p['source']} source: {self._intrinsics.width}x{self._intrinsics.height} on {p['image_topic']}"
        )

    def _capture_loop(self) -> None:
        # File sources are paced to `fps`; the RealSense paces itself (wait_for_frames blocks).
        period = 0.0 if self.params["source"] == "realsense" and not self.params["path"] else 1.0 / self.params["fps"]
        next_due = time.monotonic()
        while not self._stop.is_set():
            try:
                rgb = self._source.read()
            except CameraDisconnectedError as err:
                self._on_disconnect(str(err))
                continue
            except CameraError as err:  # an unreadable file in a folder: say so, keep going
                self._diagnose(DIAG_ERROR, f"frame error: {err}")
                self._stop.wait(self.params["reconnect_period_s"])
                continue
            frame_id = self.params["frame_id"]
            try:
                stamp = self.get_clock().now().to_msg()
                self._image_pub.publish(image_msg(rgb, frame_id, stamp))
                self._info_pub.publish(camera_info_msg(self._intrinsics, frame_id, stamp))
            except Exception:
                # SIGTERM shuts the context down before destroy_node sets _stop: end the thread quietly then
                if self._stop.is_set() or not self.context.ok():
                    return
                raise
            self.frames_published += 1
            if period:
                now = time.monotonic()
                next_due = max(next_due + period, now)
                self._stop.wait(next_due - now)

    def _on_disconnect(self, why: str) -> None:
        self.get_logger().error(
            f"camera stopped delivering ({why}); re-opening every {self.params['reconnect_period_s']} s"
        )
        self._diagnose(DIAG_ERROR, f"disconnected: {why}")
        self._source.close()
        while not self._stop.wait(self.params["reconnect_period_s"]):
            try:
                self._intrinsics = self._source.open()
            except CameraError as err:
                self._diagnose(DIAG_ERROR, f"reconnect failed: {err}")
                continue
            self.reconnects += 1
            self.get_logger().info("camera re-opened")
            self._diagnose(DIAG_OK, "reconnected")
            return

    def _diagnose(self, level: int, message: str) -> None:
        values = {
            "source": self.params["source"],
            "frames_published": self.frames_published,
            "reconnects": self.reconnects,
        }
        stamp = self.get_clock().now().to_msg()
        with contextlib.suppress(Exception):  # the context may be shutting down
            self._diag_pub.publish(diagnostic_array(f"more_vla_policy: {NODE_NAME}", level, message, values, stamp))

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0 + self.params["timeout_ms"] / 1000.0)
        self._source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, NODE_NAME, __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
