"""ROS benchmarks of the VLA's ROS face: image transport and camera-to-command latency, cross-process over DDS.

- image_transport: the camera node (synthetic 640x480 rgb8 at 30 fps, its own process) -> this process;
  latency = receive time - header stamp (both the system clock).
- camera_to_command: camera node -> policy node (tiny random-weight checkpoint, its own process) -> this
  process; latency = command receive time - command stamp (= the stamp of the image it was computed from).
  Variants: the policy at 5 Hz (the default rate; includes waiting for the next decision slot) and at 30 Hz
  (decides on every frame it can).
Each variant runs `--rounds` times in turn; the JSON reports every round's p50/p99 and the best and median p50.
Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _start(module: str, params: dict) -> subprocess.Popen:
    args = [sys.executable, "-m", module, "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _collect(node, msg_type, topic: str, qos, n: int, timeout: float, keep=lambda m: True) -> list[float]:
    import rclpy

    lat: list[float] = []

    def on_msg(msg) -> None:
        if keep(msg):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            lat.append((time.time_ns() - stamp) / 1e6)

    sub = node.create_subscription(msg_type, topic, on_msg, qos)
    end = time.monotonic() + timeout
    while len(lat) < n and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_subscription(sub)
    return lat


def _summary(rounds: list[list[float]], warmup: int) -> dict:
    per_round = []
    for lat in rounds:
        arr = np.asarray(lat[warmup:], dtype=np.float64)
        if arr.size == 0:
            per_round.append({"count": 0})
            continue
        per_round.append(
            {
                "count": int(arr.size),
                "p50_ms": round(float(np.percentile(arr, 50)), 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "mean_ms": round(float(arr.mean()), 3),
            }
        )
    p50s = [r["p50_ms"] for r in per_round if r.get("count")]
    p99s = [r["p99_ms"] for r in per_round if r.get("count")]
    return {
        "rounds": per_round,
        "best_p50_ms": min(p50s) if p50s else None,
        "median_p50_ms": statistics.median(p50s) if p50s else None,
        "median_p99_ms": statistics.median(p99s) if p99s else None,
    }


def bench_image_transport(node, frames: int, rounds: int) -> dict:
    from sensor_msgs.msg import Image

    from more_ros import names
    from more_ros.qos import SENSOR_QOS

    camera = _start("more_vla_policy.camera_node", {"source": "synthetic", "width": 640, "height": 480, "fps": 30.0})
    try:
        results = [_collect(node, Image, names.CAMERA_IMAGE, SENSOR_QOS, frames, 60.0) for _ in range(rounds)]
    finally:
        _stop(camera)
    out = _summary(results, warmup=5)
    out.update({"image": "640x480 rgb8", "fps": 30.0, "qos": "sensor data (best effort)"})
    return out


def bench_camera_to_command(node, checkpoint: Path, rate_hz: float, decisions: int, rounds: int) -> dict:
    from more_msgs.msg import QuadrupedCommand
    from more_ros import names
    from more_ros.qos import COMMAND_QOS

    camera = _start("more_vla_policy.camera_node", {"source": "synthetic", "width": 640, "height": 480, "fps": 30.0})
    policy = _start(
        "more_vla_policy.policy_node",
        {"checkpoint": str(checkpoint), "enabled": True, "instruction": "go to the red ball", "rate_hz": rate_hz},
    )
    try:
        decided = lambda m: m.bins[0] >= 0  # noqa: E731 - stop commands carry no decoder bins
        results = [
            _collect(node, QuadrupedCommand, names.COMMAND, COMMAND_QOS, decisions, 180.0, keep=decided)
            for _ in range(rounds)
        ]
    finally:
        _stop(policy)
        _stop(camera)
    out = _summary(results, warmup=3)
    out.update({"policy_rate_hz": rate_hz, "model": "tiny random-weight MoRE (make_tiny_checkpoint)"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_ros.py", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="(always JSON; accepted for bench/run_all.py)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=150, help="images per transport round")
    parser.add_argument("--decisions", type=int, default=40, help="commands per camera-to-command round")
    args = parser.parse_args(argv)

    import rclpy

    from more_model.testing import make_tiny_checkpoint

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rclpy.init()
    node = rclpy.create_node("bench_ros")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny", seed=0)
            result = {
                "image_transport": bench_image_transport(node, args.frames, args.rounds),
                "camera_to_command_5hz": bench_camera_to_command(node, checkpoint, 5.0, args.decisions, args.rounds),
                "camera_to_command_30hz": bench_camera_to_command(node, checkpoint, 30.0, args.decisions, args.rounds),
                "cpu_count": os.cpu_count(),
            }
    finally:
        node.destroy_node()
        rclpy.shutdown()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
