"""Sport-mode backend benchmarks: can the simulated Go2 in sport mode run at real time here, and what do the
processes cost. JSON on the last line.

    python bench/bench_sport.py --json [--rounds 3] [--sim-seconds 10] [--seconds 20] [--no-ros]

server_rtf  go2_sim.sport_server.SportServer in one process (Menagerie Go2, 2 ms physics steps, the velocity policy
            at 50 Hz walking at 0.5 m/s): simulated seconds per wall second, best and median over rounds.
chain       real processes over DDS: go2_sport_sim (real_time_factor 1) + go2_sport + command_publisher (vx 0.5,
            10 Hz) for `--seconds`: simulated time gained per wall second while measured, simulated time the
            simulator dropped because it was starved (its own /diagnostics), CPU per process (utime + stime from
            /proc, % of one core), Move requests received per second, and the forward speed reached (sim time).
The machine's load average is recorded next to the numbers: they are only comparable at similar load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np


def bench_server_rtf(rounds: int, sim_seconds: float) -> dict[str, object]:
    from go2_sim.sport_server import SportServer
    from wtw_controller.onnx_policy import OnnxPolicy

    policy = OnnxPolicy()
    rtfs = []
    for _ in range(rounds):
        server = SportServer(policy)
        server.handle(1008, '{"x":0.5,"y":0.0,"z":0.0}')
        steps = round(sim_seconds / server.body.timestep)
        t0 = time.perf_counter()
        server.advance(steps)
        rtfs.append(sim_seconds / (time.perf_counter() - t0))
    return {"best": max(rtfs), "median": statistics.median(rtfs), "rounds": rtfs}


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_chain(seconds: float) -> dict[str, object]:
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry

    from more_ros import names
    from more_ros.qos import SENSOR_QOS, STATUS_QOS
    from more_ros.testing import NodeProcess, Probe
    from unitree_api.msg import Request

    procs = {
        "go2_sport_sim": NodeProcess("go2_sim.sport_sim_node"),
        "go2_sport": NodeProcess("go2_bridge.sport_node"),
        "command_publisher": NodeProcess("more_vla_policy.command_publisher", {"vx": 0.5, "rate_hz": 10.0}),
    }
    probe = Probe("bench_sport")
    odom = probe.listen(Odometry, names.GO2_SIM_ODOM, SENSOR_QOS)
    requests = probe.listen(Request, names.SPORT_REQUEST, STATUS_QOS, stamp=True)
    diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)

    def sim_time() -> float:
        s = odom[-1].header.stamp
        return s.sec + s.nanosec * 1e-9

    def dropped() -> float:
        for d in reversed(diags):
            for s in d.status:
                if s.name.startswith("go2_sport_sim"):
                    return float(next(kv.value for kv in s.values if kv.key == "dropped_sim_time_s"))
        return math.nan

    try:
        assert probe.spin_until(lambda: len(requests) > 20 and odom, 120.0), "the chain did not start"
        probe.spin_for(2.0)  # walking
        cpu0 = {k: _cpu_seconds(p.proc.pid) for k, p in procs.items()}
        wall0, sim0, drop0, req0 = time.monotonic(), sim_time(), dropped(), len(requests)
        i0 = len(odom)
        probe.spin_for(seconds)
        wall = time.monotonic() - wall0
        cpu = {k: (_cpu_seconds(p.proc.pid) - cpu0[k]) / wall * 100.0 for k, p in procs.items()}
        sim = sim_time() - sim0
        probe.spin_for(1.5)  # the next diagnostics
        track = np.array(
            [(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, m.pose.pose.position.x, m.pose.pose.position.y)
             for m in odom[i0:]]
        )  # fmt: skip
        speed = float(np.hypot(*(track[-1, 1:] - track[0, 1:])) / (track[-1, 0] - track[0, 0]))
        moves = sum(r.header.identity.api_id == 1008 for _, r in requests[req0:])
        return {
            "wall_s": wall,
            "sim_per_wall": sim / wall,
            "sim_dropped_s": dropped() - drop0,
            "cpu_percent_of_one_core": cpu,
            "move_per_s": moves / wall,
            "planar_speed_m_s": speed,
        }
    finally:
        probe.close()
        for p in procs.values():
            p.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line (the default indents it)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sim-seconds", type=float, default=10.0, help="simulated seconds per in-process round")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds of the process measurement")
    parser.add_argument("--no-ros", action="store_true", help="skip the cross-process measurement")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out: dict[str, object] = {"load_average_before": os.getloadavg()}
    out["server_rtf"] = bench_server_rtf(args.rounds, args.sim_seconds)
    if not args.no_ros:
        out["chain"] = bench_chain(args.seconds)
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
