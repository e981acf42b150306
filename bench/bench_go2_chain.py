"""The whole chain on the physics Go2 (run by bench/run_all.py), JSON on the last line.

    python bench/bench_go2_chain.py --json [--scales 0.2] [--episodes 3] [--eval-episodes 25] [--seed 0]

tracking   in process (`embodiment="go2"`, no ROS): the scripted expert's go_to and go_through episodes on the
           walking robot; per decision, the commanded (vx, vy, wz) (the controller's own mapping) against the
           trunk's mean velocity over that decision (heading frame): RMSE per component, and the same for the
           kinematic base as a reference. Deterministic.
chain      `more-stack sim --embodiment go2 --time-scale S` (simulator + policy models/demo + controller +
           bridge, each its own process over DDS) for `--episodes` episodes, with a probe in this process:
           camera -> command (command received here - its image's stamp), command -> targets (the first
           JointTargets the controller stamps after the command arrived here), targets -> LowCmd (the first LowCmd
           received here after those targets) and camera -> LowCmd, p50/p99 in wall ms (and x S: in simulated
           time); the runner's own JSON (tracking RMSE, falls, success, bring-up). At S < 1 every rate of the
           stack is x S: the periods (controller 50 S Hz, bridge 500 S Hz) dominate these latencies. Also the
           bridge's and the controller's loop periods (p50/p99/max, from their /diagnostics): the timing that
           decides the time scale (docs/simulator.md).
success    `more-sim eval --policy models/demo --tasks go_to` in process, kinematic vs go2 (D435) vs go2 with
           the kinematic camera's 60 degree field of view ("wide": separates the body from the camera), the
           same evaluation seeds for all three, Wilson 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _claim_domain() -> None:
    """A ROS domain of its own (the tests' lock-file convention), so no other run on this machine is heard."""
    if "ROS_DOMAIN_ID" in os.environ:
        return
    import fcntl

    for domain in random.SystemRandom().sample(range(1, 233), 232):
        handle = open(Path(tempfile.gettempdir()) / f"more-ros-domain-{domain}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        globals()["_DOMAIN_LOCK"] = handle
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        return
    raise RuntimeError("no free ROS_DOMAIN_ID")


def _pct(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def bench_tracking(episodes: int) -> dict[str, object]:
    from more_sim.config import SimConfig
    from more_sim.env import make_env
    from more_sim.expert import ScriptedExpert

    out: dict[str, object] = {}
    for embodiment in ("go2", "kinematic"):
        errors, successes, falls, n = [], 0, 0, 0
        for task in ("go_to", "go_through"):
            env = make_env(task, "id", SimConfig(embodiment=embodiment, render_images=False))
            for seed in range(episodes):
                _, info = env.reset(seed=1000 + seed)
                expert, done = ScriptedExpert(), False
                while not done:
                    _, _, terminated, truncated, info = env.step(expert.act(info))
                    v = info["velocity"]
                    errors.append(np.subtract(v["achieved"], v["commanded"]))
                    done = terminated or truncated
                successes += int(info["success"])
                falls += int(info["failure"] == "fall")
                n += 1
            env.close()
        e = np.asarray(errors)
        rmse = np.sqrt((e**2).mean(axis=0))
        out[embodiment] = {
            "decisions": len(e),
            "vx_rmse": float(rmse[0]),
            "vy_rmse": float(rmse[1]),
            "wz_rmse": float(rmse[2]),
            "episodes": n,
            "expert_success": successes / n,
            "falls": falls,
        }
    return out


def bench_chain(scale: float, episodes: int, seed: int) -> dict[str, object]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from more_msgs.msg import JointTargets, QuadrupedCommand
    from more_ros import names
    from more_ros.convert import stamp_to_ns
    from more_ros.qos import COMMAND_QOS
    from unitree_go.msg import LowCmd

    rclpy.init()
    node = rclpy.create_node("bench_go2_chain")
    now = lambda: node.get_clock().now().nanoseconds  # noqa: E731
    images, commands, targets, lowcmds = [], [], [], []
    node.create_subscription(Image, names.CAMERA_IMAGE, lambda m: images.append(stamp_to_ns(m.header.stamp)),
                             qos_profile_sensor_data)  # fmt: skip
    node.create_subscription(
        QuadrupedCommand,
        names.COMMAND,
        lambda m: commands.append((stamp_to_ns(m.header.stamp), now())) if m.bins[0] >= 0 else None,
        COMMAND_QOS,
    )
    node.create_subscription(JointTargets, names.JOINT_TARGETS, lambda m: targets.append(stamp_to_ns(m.header.stamp)),
                             COMMAND_QOS)  # fmt: skip
    node.create_subscription(LowCmd, names.LOWCMD, lambda m: lowcmds.append(now()), qos_profile_sensor_data)
    loops: dict[str, dict[str, str]] = {}  # the newest loop statistics each node reports

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            for prefix in ("go2_bridge", "wtw_controller"):
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith(prefix) and "period_p99_ms" in values:
                    loops[prefix] = {k: float(v) for k, v in values.items() if k.startswith("period_")}

    node.create_subscription(DiagnosticArray, names.DIAGNOSTICS, on_diagnostics, qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    argv = [sys.executable, "-m", "more_bringup.runner", "sim", "--embodiment", "go2", "--time-scale", str(scale),
            "--episodes", str(episodes), "--json", "--set", f"more_sim.seed={seed}"]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        executor.spin_once(timeout_sec=0.05)
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    node.destroy_node()
    rclpy.shutdown()
    if proc.returncode != 0:
        return {"error": err[-2000:], "returncode": proc.returncode}
    result = json.loads(out)
    c2c, c2t, t2l, c2l = [], [], [], []
    targets_sorted, lowcmd_sorted = np.sort(targets), np.sort(lowcmds)
    for stamp, received in commands:
        c2c.append((received - stamp) / 1e6)
        k = int(np.searchsorted(targets_sorted, received, side="right"))
        if k == len(targets_sorted):
            continue
        t = targets_sorted[k]
        j = int(np.searchsorted(lowcmd_sorted, t, side="right"))
        if j == len(lowcmd_sorted):
            continue
        c2t.append((t - received) / 1e6)
        t2l.append((lowcmd_sorted[j] - t) / 1e6)
        c2l.append((lowcmd_sorted[j] - stamp) / 1e6)
    latency = {
        "camera_to_command": _pct(c2c),
        "command_to_targets": _pct(c2t),
        "targets_to_lowcmd": _pct(t2l),
        "camera_to_lowcmd": _pct(c2l),
    }
    keys = ("success_rate", "episodes", "tracking", "falls", "bridge", "decisions", "seconds", "exit_status")
    return {
        "time_scale": scale,
        "wall_s": round(wall, 1),
        "latency_wall_ms": latency,
        "camera_to_lowcmd_simulated_ms": {k: v * scale for k, v in latency["camera_to_lowcmd"].items() if k != "n"},
        "loop_periods_wall_ms": loops,  # at the end of the run (bridge: last 2000 periods, controller: last 500)
        "runner": {k: result.get(k) for k in keys},
    }


def bench_success(episodes: int, seed: int) -> dict[str, object]:
    import torch

    torch.set_num_threads(1)
    from more_sim.config import SimConfig
    from more_sim.evaluate import evaluate, wilson
    from more_sim.policies import make_policy

    policy = make_policy(str(ROOT / "models" / "demo"))
    out: dict[str, object] = {}
    variants = {
        "kinematic": SimConfig(),
        "go2_d435": SimConfig(embodiment="go2"),
        "go2_wide_camera": SimConfig(embodiment="go2", go2_camera="wide"),
    }
    for name, config in variants.items():
        t0 = time.monotonic()
        r = evaluate(policy, ["go_to"], episodes, "id", seed, config)
        d = r["details"]["go_to"]
        lo, hi = wilson(d["successes"], d["episodes"])
        out[name] = {**d, "wilson95": [lo, hi], "seconds": round(time.monotonic() - t0, 1)}
    out["seed"], out["split"], out["image_size"] = seed, "id", r["image_size"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line")
    parser.add_argument("--scales", default="0.2", help="comma-separated time scales of the chain runs")
    parser.add_argument("--episodes", type=int, default=3, help="episodes per chain run")
    parser.add_argument("--tracking-episodes", type=int, default=10, help="expert episodes per task (tracking)")
    parser.add_argument("--eval-episodes", type=int, default=25, help="models/demo go_to episodes per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("tracking", "chain", "success"), action="append", default=None)
    args = parser.parse_args(argv)
    sections = args.only or ["tracking", "chain", "success"]
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ["OMP_NUM_THREADS"] = "1"
    _claim_domain()
    results: dict[str, object] = {"cores": os.cpu_count(), "load_before": os.getloadavg()}
    if "tracking" in sections:
        results["tracking"] = bench_tracking(args.tracking_episodes)
        print(f"[bench_go2_chain] tracking: {results['tracking']}", file=sys.stderr)
    if "chain" in sections:
        results["chain"] = [bench_chain(float(s), args.episodes, args.seed) for s in args.scales.split(",")]
        print(f"[bench_go2_chain] chain: {results['chain']}", file=sys.stderr)
    if "success" in sections:
        results["success"] = bench_success(args.eval_episodes, args.seed)
        print(f"[bench_go2_chain] success: {results['success']}", file=sys.stderr)
    results["load_after"] = os.getloadavg()
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
