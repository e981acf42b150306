"""Test-side helpers for cross-process ROS tests: start a node as its own OS process (`python -m ...`) and
talk to it over real DDS from the test process through a probe node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np


def start_node(module: str, params: dict | None = None, params_file: str | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", module, "--ros-args"]
    for k, v in (params or {}).items():
        args += ["-p", f"{k}:={v}"]
    if params_file:
        args += ["--params-file", params_file]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def stop_node(proc: subprocess.Popen) -> str:
    """Terminate (SIGTERM, then SIGKILL after 10 s) and return stderr."""
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


class Probe:
    """An rclpy node in the test process with its own context."""

    def __init__(self, name: str) -> None:
        import rclpy

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.inbox: dict[str, list] = {}

    def listen(self, msg_type: type, topic: str, qos) -> list:
        box = self.inbox.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def spin_until(
        self,
        predicate: Callable[[], bool],
        timeout: float,
        every: float = 0.05,
        action: Callable[[], None] | None = None,
    ) -> bool:
        """Spin (calling `action` every `every` s) until predicate() or timeout; returns predicate()."""
        end = time.monotonic() + timeout
        next_action = 0.0
        while time.monotonic() < end:
            if action is not None and time.monotonic() >= next_action:
                action()
                next_action = time.monotonic() + every
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def image_message(rgb: np.ndarray, stamp_ns: int, encoding: str = "rgb8"):
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000
    msg.header.frame_id = "camera_color_optical_frame"
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    msg.step = rgb.shape[1] * 3
    msg.data = rgb.tobytes()
    return msg
