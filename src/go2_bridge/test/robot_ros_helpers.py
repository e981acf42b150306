"""Helpers for the robot-side cross-process tests: nodes as OS processes, a probe node to talk to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable


class NodeProcess:
    """`python -m module --ros-args -p k:=v ...` with its output in a temp file (shown on failure)."""

    def __init__(self, module: str, params: dict | None = None) -> None:
        args = [sys.executable, "-m", module, "--ros-args"]
        for k, v in (params or {}).items():
            args += ["-p", f"{k}:={v}"]
        # The log outlives this call (read on failure, closed in stop()), so no context manager.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=module.replace(".", "_") + "_", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=os.environ.copy())

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
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

    def listen(self, msg_type: type, topic: str, qos, stamp: bool = False) -> list:
        """Collect messages (with their arrival time.monotonic() if stamp) into the returned list."""
        box: list = []
        if stamp:
            self.node.create_subscription(msg_type, topic, lambda m: box.append((time.monotonic(), m)), qos)
        else:
            self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def spin_for(self, seconds: float, action: Callable[[], None] | None = None, every: float = 0.01) -> None:
        self.spin_until(lambda: False, seconds, action, every)

    def spin_until(
        self, predicate: Callable[[], bool], timeout: float, action: Callable[[], None] | None = None,
        every: float = 0.01,
    ) -> bool:  # fmt: skip
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

    def call(self, srv_type: type, name: str, timeout: float = 10.0, action: Callable[[], None] | None = None):
        client = self.node.create_client(srv_type, name)
        assert self.spin_until(client.service_is_ready, timeout, action), f"service {name} not available"
        future = client.call_async(srv_type.Request())
        assert self.spin_until(future.done, timeout, action), f"service {name} did not answer"
        self.node.destroy_client(client)
        return future.result()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
