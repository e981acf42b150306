"""The test-probe library of every package's cross-process ROS tests (imports rclpy lazily).

`NodeProcess` starts a node as its own OS process (`python -m module --ros-args ...`, as `ros2 run` would)
with its output in a temporary file; `Probe` is an rclpy node with its own context in the test process that
publishes, listens, calls services and spins until a condition holds; `image_message` builds a
sensor_msgs/Image the way a camera driver does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from more_ros.process import die_with_parent


class NodeProcess:
    """`python -m module --ros-args -p k:=v ... [--params-file F]` with its output kept for the test to read."""

    def __init__(
        self,
        module: str,
        params: Mapping[str, Any] | None = None,
        params_file: str | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        argv = [sys.executable, "-m", module, *args, "--ros-args"]
        for k, v in (params or {}).items():
            argv += ["-p", f"{k}:={v}"]
        if params_file:
            argv += ["--params-file", str(params_file)]
        # The log outlives this call (read on failure, closed in stop()), so no context manager.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=module.replace(".", "_") + "_", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, env=os.environ.copy(), preexec_fn=die_with_parent
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def wait(self, timeout: float) -> int:
        """Wait for the process to end on its own; its exit status (raises TimeoutExpired)."""
        return self.proc.wait(timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Send `sig` (Ctrl-C by default), kill after `timeout` s; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Probe:
    """An rclpy node in the test process, with its own context and executor."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def listen(self, msg_type: type, topic: str, qos: Any, stamp: bool = False) -> list:
        """Collect messages (as (time.monotonic(), msg) if `stamp`) into the returned list."""
        box: list = []
        if stamp:
            self.node.create_subscription(msg_type, topic, lambda m: box.append((time.monotonic(), m)), qos)
        else:
            self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def spin_for(self, seconds: float, action: Callable[[], None] | None = None, every: float = 0.01) -> None:
        self.spin_until(lambda: False, seconds, action, every)

    def spin_until(
        self,
        predicate: Callable[[], bool],
        timeout: float,
        action: Callable[[], None] | None = None,
        every: float = 0.05,
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
            self.executor.spin_once(timeout_sec=0.002)
        return predicate()

    def call(
        self, srv_type: type, name: str, timeout: float = 10.0, action: Callable[[], None] | None = None, **fields: Any
    ) -> Any:
        """Call service `name` (request fields as keywords) and return the response."""
        client = self.node.create_client(srv_type, name)
        assert self.spin_until(client.service_is_ready, timeout, action), f"service {name} not available"
        future = client.call_async(srv_type.Request(**fields))
        assert self.spin_until(future.done, timeout, action), f"service {name} did not answer"
        self.node.destroy_client(client)
        return future.result()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def image_message(rgb: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> Any:
    """sensor_msgs/Image of an HxWx3 uint8 array, stamped `stamp_ns`, in the camera's optical frame."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000
    msg.header.frame_id = "camera_color_optical_frame"
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    msg.step = rgb.shape[1] * 3
    msg.data = rgb.tobytes()
    return msg
