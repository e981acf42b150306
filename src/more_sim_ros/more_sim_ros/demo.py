"""The simulated demo: start the stack's nodes as separate processes and show that they talk.

Starts `command_publisher` (a fixed forward-and-turn command for `--seconds`, then stop) and
`base_sim_node` (the kinematic base) as two OS processes, listens to both over DDS from this
third process, and prints a JSON summary: messages seen, final pose, distance driven.
Exit status 0 only if commands and odometry were received and the base moved.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

from more_common.cli import OneLineArgumentParser


def _spawn(module: str, ros_params: dict[str, float]) -> subprocess.Popen:
    args = [sys.executable, "-m", module, "--ros-args"]
    for k, v in ros_params.items():
        args += ["-p", f"{k}:={v}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def run(seconds: float, vx: float, wz: float) -> dict:
    import rclpy
    from nav_msgs.msg import Odometry

    from more_msgs.msg import QuadrupedCommand
    from more_ros.names import COMMAND, SIM_ODOM
    from more_ros.qos import COMMAND_QOS, SENSOR_QOS

    procs = [
        _spawn("more_sim_ros.base_node", {"rate_hz": 50.0}),
        _spawn("more_vla_policy.command_publisher", {"vx": vx, "wz": wz, "duration_s": seconds, "rate_hz": 10.0}),
    ]
    counts = {"commands": 0, "odometry": 0}
    last: dict = {}
    rclpy.init()
    node = rclpy.create_node("more_demo_monitor")
    try:

        def on_cmd(msg: QuadrupedCommand) -> None:
            counts["commands"] += 1

        def on_odom(msg: Odometry) -> None:
            counts["odometry"] += 1
            last["odom"] = msg

        node.create_subscription(QuadrupedCommand, COMMAND, on_cmd, COMMAND_QOS)
        node.create_subscription(Odometry, SIM_ODOM, on_odom, SENSOR_QOS)
        start = time.monotonic()
        # Motion for `seconds`, then watch the stop command bring the base to rest.
        while time.monotonic() - start < seconds + 2.0 + 3.0:
            rclpy.spin_once(node, timeout_sec=0.05)
            if any(p.poll() is not None for p in procs):
                break
    finally:
        node.destroy_node()
        rclpy.shutdown()
        errors = []
        for p in procs:
            if p.poll() is not None:
                errors.append(f"{p.args[2]} exited early with {p.returncode}: {p.stderr.read()[-500:]}")
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
    odom = last.get("odom")
    pose = (
        {
            "x": odom.pose.pose.position.x,
            "y": odom.pose.pose.position.y,
            "yaw": 2 * math.atan2(odom.pose.pose.orientation.z, odom.pose.pose.orientation.w),
            "speed": math.hypot(odom.twist.twist.linear.x, odom.twist.twist.linear.y),
        }
        if odom
        else None
    )
    distance = math.hypot(pose["x"], pose["y"]) if pose else 0.0
    return {
        "nodes": ["base_sim_node", "command_publisher"],
        "commands_received": counts["commands"],
        "odometry_received": counts["odometry"],
        "final_pose": pose,
        "distance_m": distance,
        "ok": counts["commands"] > 0 and counts["odometry"] > 0 and distance > 0.1 and not errors,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="more-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of motion before the stop command")
    parser.add_argument("--vx", type=float, default=0.5, help="forward command [m/s]")
    parser.add_argument("--wz", type=float, default=0.3, help="yaw-rate command [rad/s]")
    args = parser.parse_args(argv)
    from more_common.action_contract import DEFAULT_SPEC, INDEX

    if not (math.isfinite(args.seconds) and 0 < args.seconds <= 600):
        parser.error(f"argument --seconds: must be in (0, 600], got {args.seconds}")
    for name in ("vx", "wz"):
        low, high = DEFAULT_SPEC.low[INDEX[name]], DEFAULT_SPEC.high[INDEX[name]]
        value = getattr(args, name)
        if not (math.isfinite(value) and low <= value <= high):
            parser.error(f"argument --{name}: must be within the action contract's [{low:g}, {high:g}], got {value}")
    result = run(args.seconds, args.vx, args.wz)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
