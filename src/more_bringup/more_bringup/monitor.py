"""What `more-stack` watches from its own process: commands, policy status, episodes and camera images.

Camera-to-command latency is measured here as the command's arrival time minus the stamp of the image it was
decided on (the policy stamps each decided command with its image's stamp), so it includes the DDS hop to this
process as a real consumer of the command sees it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


class Monitor:
    def __init__(self) -> None:
        import rclpy
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from more_msgs.msg import EpisodeStatus, PolicyStatus, QuadrupedCommand
        from more_ros import names
        from more_ros.convert import stamp_to_ns
        from more_ros.qos import COMMAND_QOS, STATUS_QOS

        self._stamp_to_ns = stamp_to_ns
        self.node = rclpy.create_node("more_stack_monitor")
        self.latencies_ms: list[float] = []
        self.inference_ms: list[float] = []
        self.commands = 0
        self.decided = 0
        self.images = 0
        self.policy_statuses = 0
        self.faults: dict[str, int] = {}
        self.episodes: dict[int, dict[str, Any]] = {}
        self.current: dict[str, Any] = {}
        self.node.create_subscription(QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS)
        self.node.create_subscription(PolicyStatus, names.POLICY_STATUS, self._on_status, STATUS_QOS)
        # Best effort matches a publisher whatever its reliability.
        self.node.create_subscription(EpisodeStatus, names.SIM_EPISODE, self._on_episode, qos_profile_sensor_data)
        self.node.create_subscription(Image, names.CAMERA_IMAGE, self._on_image, qos_profile_sensor_data)

    def _on_command(self, msg: Any) -> None:
        self.commands += 1
        if msg.bins[0] >= 0:
            self.decided += 1
            stamp = self._stamp_to_ns(msg.header.stamp)
            if stamp:
                self.latencies_ms.append((self.node.get_clock().now().nanoseconds - stamp) / 1e6)

    def _on_status(self, msg: Any) -> None:
        self.policy_statuses += 1
        if msg.fault:
            key = msg.fault.split(":")[0]
            self.faults[key] = self.faults.get(key, 0) + 1
        if math.isfinite(msg.inference_ms) and msg.state in (1, 3):  # RUNNING or DONE: a decision was made
            self.inference_ms.append(float(msg.inference_ms))

    def _on_image(self, msg: Any) -> None:
        self.images += 1

    def _on_episode(self, msg: Any) -> None:
        self.current = {"task": msg.task, "instruction": msg.instruction, "episode": int(msg.episode)}
        if (msg.terminated or msg.truncated) and int(msg.episode) not in self.episodes:
            self.episodes[int(msg.episode)] = {
                "episode": int(msg.episode),
                "task": msg.task,
                "instruction": msg.instruction,
                "steps": int(msg.step),
                "success": bool(msg.success),
                "terminated": bool(msg.terminated),
                "truncated": bool(msg.truncated),
            }

    def summary(self) -> dict[str, Any]:
        mean = lambda xs: float(sum(xs) / len(xs)) if xs else None  # noqa: E731
        return {
            "commands": self.commands,
            "decisions": self.decided,
            "images": self.images,
            "faults": self.faults,
            "mean_step_latency_ms": mean(self.latencies_ms),
            "step_latency_ms_p50": _percentile(self.latencies_ms, 50),
            "step_latency_ms_p99": _percentile(self.latencies_ms, 99),
            "mean_inference_ms": mean(self.inference_ms),
            "inference_ms_p50": _percentile(self.inference_ms, 50),
        }

    def destroy(self) -> None:
        self.node.destroy_node()
