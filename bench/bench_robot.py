"""Robot-side benchmarks (run by bench/run_all.py), JSON on the last line.

    python bench/bench_robot.py --json [--rounds 5] [--seconds 10] [--no-ros]

physics_rtf      the MuJoCo Menagerie Go2 body (more_sim.go2.Go2Body: PD + 15 ms torque lag at 2 ms steps) on one
                 core, variants side by side in each round: (a) physics alone, the robot standing under PD;
                 (b) physics + the velocity controller core (bundled ONNX policy, 50 Hz) walking at 0.5 m/s, in
                 one process; (c) as the go2_mujoco_sim node pays per step without DDS: physics + a
                 unitree_go/LowState filled every step. Simulated seconds per wall second, best and median over
                 rounds. Camera rendering: not measured yet (the body has a camera mount; rendering comes with
                 the six-task world).
tracking         the velocity backend's tracking in the loop above (deterministic, one run per command): mean
                 heading-frame vx, vy and yaw rate over 5 s after 1 s of start-up, with and without the yaw trim.
posture          the velocity backend's posture (wtw_controller.posture) in the same loop: 1 s standing, 2 s to
                 take the posture in place, then 5 s of the command judged: trunk height below the 1 s stand
                 (mean, and the highest point), pitch, forward speed, max tilt; crouched walks with and without
                 the crouched speed cap.
controller_step  WtwController.step with a walk-these-ways-sized TorchScript policy (body MLP 2102-512-256-128-12,
                 adaptation MLP 2100-256-128-2, ELU; torch 1 thread): observation + history alone, the two
                 forwards alone, and the whole step; and the velocity backend's step (ONNX, 1 thread); ms per
                 call, median and p99 per round; best and median over rounds.
bridge_cycle     the bridge's per-cycle work without DDS: parse a unitree_go/LowState, SafetyCore.step in
                 ACTIVE, fill the unitree_go/LowCmd and its CRC.
loops            real processes over DDS on this machine, variants in turn: (a) MuJoCo Go2 + bridge standing,
                 (b) MuJoCo Go2 + bridge ACTIVE + controller with its default velocity backend (zero command:
                 it steps in place). Timer periods from the nodes' own /diagnostics: bridge (500 Hz, last 2000
                 periods) and controller (50 Hz, last 500 periods), p50/p99/max in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _stats(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def _rounds_summary(rounds: list[dict[str, float]]) -> dict[str, object]:
    """Best and median over rounds of each round's p50 and p99."""
    out: dict[str, object] = {}
    for key in ("p50", "p99"):
        values = [r[key] for r in rounds]
        out["best_" + key], out["median_" + key] = min(values), statistics.median(values)
    out["rounds"] = rounds
    return out


def make_wtw_sized_run(root: Path, zero_last_layer: bool = True) -> Path:
    import torch

    def mlp(sizes: list[int]) -> torch.nn.Sequential:
        layers: list[torch.nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ELU())
        if zero_last_layer:
            torch.nn.init.zeros_(layers[-1].weight)
            torch.nn.init.zeros_(layers[-1].bias)
        return torch.nn.Sequential(*layers)

    torch.manual_seed(0)
    ckpt = root / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(mlp([2102, 512, 256, 128, 12])).save(str(ckpt / "body_latest.jit"))
        torch.jit.script(mlp([2100, 256, 128, 2])).save(str(ckpt / "adaptation_module_latest.jit"))
    return root


def bench_controller_step(run: Path, rounds: int, steps: int) -> dict[str, object]:
    import torch

    from more_common.action_contract import stand_command
    from wtw_controller.core import WtwController
    from wtw_controller.observation import build_observation
    from wtw_controller.policy import WtwPolicy

    torch.set_num_threads(1)
    policy = WtwPolicy(run)
    ctl = WtwController(policy)
    q = np.array([-0.1, 0.8, -1.5, 0.1, 0.8, -1.5, -0.1, 1.0, -1.5, 0.1, 1.0, -1.5])
    out: dict[str, list[dict[str, float]]] = {"observation": [], "forward": [], "step": []}
    history = np.zeros(2100)
    gravity, commands, zeros, clock = np.array([0.0, 0.0, -1.0]), ctl.mapper.stand, np.zeros(12), np.zeros(4)
    for _ in range(rounds):
        obs_ms, fwd_ms, step_ms = [], [], []
        for i in range(steps):
            now = i * 0.02
            ctl.on_joint_state(q, np.zeros(12), now)
            ctl.on_imu(np.array([0.0, 0.0, 0.0, 1.0]), now)
            ctl.on_command(stand_command(), now)
            t0 = time.perf_counter()
            obs = build_observation(gravity, commands, q, zeros, zeros, zeros, clock, ctl.config)
            history = np.concatenate([history[70:], obs])
            t1 = time.perf_counter()
            policy(history)
            t2 = time.perf_counter()
            ctl.step(now)
            t3 = time.perf_counter()
            obs_ms.append((t1 - t0) * 1e3)
            fwd_ms.append((t2 - t1) * 1e3)
            step_ms.append((t3 - t2) * 1e3)
        out["observation"].append(_stats(obs_ms))
        out["forward"].append(_stats(fwd_ms))
        out["step"].append(_stats(step_ms))
    return {k: _rounds_summary(v) for k, v in out.items()}


def bench_velocity_step(rounds: int, steps: int) -> dict[str, object]:
    """The velocity step with posture off, on and steady, and on while the posture moves every step (its inverse
    kinematics each time: a crouch command flipping between -0.12 and 0 m), variants in turn in each round."""
    from more_common.action_contract import action_from_mapping
    from wtw_controller.core import Controller
    from wtw_controller.onnx_policy import OnnxPolicy
    from wtw_controller.posture import PostureConfig
    from wtw_controller.velocity import DEFAULT_POSE_SDK, VelocityBackend, VelocityConfig

    policy = OnnxPolicy()
    q = np.array(DEFAULT_POSE_SDK)
    walk = action_from_mapping({"vx": 0.5})
    crouch = [action_from_mapping({"vx": 0.5, "body_height": h}) for h in (-0.12, 0.0)]
    variants = {
        "step_posture_off": (VelocityConfig(posture=PostureConfig(enabled=False)), lambda i: walk),
        "step": (VelocityConfig(), lambda i: walk),
        "step_posture_moving": (VelocityConfig(), lambda i: crouch[(i // 10) % 2]),
    }
    out: dict[str, list[dict[str, float]]] = {"forward": [], **{k: [] for k in variants}}
    for _ in range(rounds):
        fwd_ms = []
        for name, (config, command) in variants.items():
            ctl = Controller(VelocityBackend(policy, config))
            step_ms = []
            for i in range(steps):
                now = i * 0.02
                ctl.on_joint_state(q, np.zeros(12), now)
                ctl.on_imu(np.array([0.0, 0.0, 0.0, 1.0]), now, np.zeros(3))
                ctl.on_command(command(i), now)
                t0 = time.perf_counter()
                policy(np.zeros(45))
                t1 = time.perf_counter()
                ctl.step(now)
                t2 = time.perf_counter()
                fwd_ms.append((t1 - t0) * 1e3)
                step_ms.append((t2 - t1) * 1e3)
            out[name].append(_stats(step_ms))
        out["forward"].append(_stats(fwd_ms))
    return {k: _rounds_summary(v) for k, v in out.items()}


class _Walker:
    """The Go2 body and the velocity controller core in one process, lock-stepped at 50 Hz."""

    def __init__(self, yaw_trim: bool = True, speed_cap: bool = True) -> None:
        from more_sim.go2 import Go2Body
        from wtw_controller.core import Controller
        from wtw_controller.onnx_policy import OnnxPolicy
        from wtw_controller.posture import UPRIGHT_SPEED, PostureConfig
        from wtw_controller.velocity import DEFAULT_POSE_SDK, VelocityBackend, VelocityConfig

        self.body = Go2Body()
        self.body.reset(np.array(DEFAULT_POSE_SDK))
        posture = PostureConfig() if speed_cap else PostureConfig(crouched_speed=UPRIGHT_SPEED)  # a flat cap: none
        self.ctl = Controller(VelocityBackend(OnnxPolicy(), VelocityConfig(yaw_trim=yaw_trim, posture=posture)))

    def tick(self, command: np.ndarray) -> None:
        from more_sim.go2 import MotorCommand

        b, backend = self.body, self.ctl.backend
        now = b.time
        w, x, y, z = b.imu_quaternion_wxyz
        self.ctl.on_joint_state(b.q, b.dq, now)
        self.ctl.on_imu(np.array([x, y, z, w]), now, b.gyroscope)
        self.ctl.on_command(command, now)
        r = self.ctl.step(now)
        kp, kd = np.full(12, backend.kp), np.full(12, backend.kd)
        b.set_command(MotorCommand(q=r.targets, kp=kp, kd=kd, tau=r.torque_ff))
        b.step(round(backend.dt / b.timestep))


def bench_physics_rtf(rounds: int, sim_seconds: float) -> dict[str, object]:
    from go2_sim.physics import Go2Sim
    from more_common.action_contract import action_from_mapping
    from more_sim.go2 import Go2Body, MotorCommand
    from unitree_go.msg import LowState
    from wtw_controller.velocity import DEFAULT_POSE_SDK

    pose = np.array(DEFAULT_POSE_SDK)
    walk = action_from_mapping({"vx": 0.5})
    n = round(sim_seconds / 0.002)
    results: dict[str, list[float]] = {"physics": [], "physics+policy": [], "physics+lowstate": []}
    for _ in range(rounds):
        body = Go2Body()
        body.reset(pose)
        body.set_command(MotorCommand.pd(pose, kp=50.0, kd=3.0))
        t0 = time.perf_counter()
        body.step(n)
        results["physics"].append(sim_seconds / (time.perf_counter() - t0))

        walker = _Walker()
        t0 = time.perf_counter()
        for _ in range(round(sim_seconds / 0.02)):
            walker.tick(walk)
        results["physics+policy"].append(sim_seconds / (time.perf_counter() - t0))

        sim, msg = Go2Sim(start="standing"), LowState()
        t0 = time.perf_counter()
        for _ in range(n):
            sim.step()
            sim.fill_lowstate(msg)
        results["physics+lowstate"].append(sim_seconds / (time.perf_counter() - t0))
    return {
        k: {"best": max(v), "median": statistics.median(v), "rounds": v, "unit": "simulated s per wall s"}
        for k, v in results.items()
    }


TRACKING_COMMANDS: dict[str, dict[str, float]] = {
    "stand": {},
    "vx 0.2": {"vx": 0.2},
    "vx 0.5": {"vx": 0.5},
    "vx 1.0": {"vx": 1.0},
    "vx -0.5": {"vx": -0.5},
    "vy 0.3": {"vy": 0.3},
    "wz 0.8": {"wz": 0.8},
    "wz -0.4": {"wz": -0.4},
    "vx 0.6 wz 0.5": {"vx": 0.6, "wz": 0.5},
}


def bench_tracking() -> dict[str, object]:
    from more_common.action_contract import action_from_mapping

    out: dict[str, object] = {}
    for trim in (True, False):
        rows = {}
        for name, values in TRACKING_COMMANDS.items():
            walker = _Walker(yaw_trim=trim)
            command = action_from_mapping(values)
            measured, tilt = [], 0.0
            for k in range(300):
                walker.tick(command)
                tilt = max(tilt, walker.body.tilt())
                if k >= 50:
                    measured.append(walker.body.body_velocity())
            mean = np.mean(measured, axis=0)
            wanted = np.array([values.get(k, 0.0) for k in ("vx", "vy", "wz")])
            rows[name] = {
                "commanded": wanted.tolist(),
                "measured": [round(float(v), 3) for v in mean],
                "error": [round(float(v), 3) for v in mean - wanted],
                "max_tilt_rad": round(tilt, 3),
            }
        out["yaw_trim" if trim else "no_trim"] = rows
    return out


POSTURE_COMMANDS: dict[str, dict[str, float]] = {
    "body_height -0.04": {"body_height": -0.04},
    "body_height -0.08": {"body_height": -0.08},
    "body_height -0.12": {"body_height": -0.12},
    "body_height -0.08, vx 0.45": {"body_height": -0.08, "vx": 0.45},
    "body_height -0.12, vx 0.3": {"body_height": -0.12, "vx": 0.3},
    "body_height -0.12, vx 0.45": {"body_height": -0.12, "vx": 0.45},
    "body_height -0.12, vx 0.3, wz 0.5": {"body_height": -0.12, "vx": 0.3, "wz": 0.5},
    "pitch 0.2": {"pitch": 0.2},
    "pitch 0.38": {"pitch": 0.38},
    "pitch -0.3": {"pitch": -0.3},
    "pitch 0.2, vx 0.3": {"pitch": 0.2, "vx": 0.3},
}
UNCAPPED = ("body_height -0.12, vx 0.45",)  # run again without the speed cap


def bench_posture() -> dict[str, object]:
    from more_common.action_contract import action_from_mapping

    def run(values: dict[str, float], speed_cap: bool) -> dict[str, object]:
        walker = _Walker(speed_cap=speed_cap)
        b = walker.body
        heights = []
        for _ in range(50):
            walker.tick(action_from_mapping({}))
            heights.append(b.base_position[2])
        nominal = float(np.mean(heights[25:]))
        posture = {k: v for k, v in values.items() if k in ("body_height", "pitch")}
        for _ in range(100):
            walker.tick(action_from_mapping(posture))
        z, pitch, tilt, start, t0 = [], [], 0.0, b.base_position.copy(), b.time
        for _ in range(250):
            walker.tick(action_from_mapping(values))
            z.append(b.base_position[2])
            pitch.append(b.base_rpy()[1])
            tilt = max(tilt, b.tilt())
        heading = b.base_rpy()[2]
        moved = b.base_position - start
        return {
            "drop_m": round(nominal - float(np.mean(z)), 3),
            "highest_drop_m": round(nominal - float(np.max(z)), 3),
            "pitch_rad": round(float(np.mean(pitch)), 3),
            "speed_m_s": round(float(np.hypot(moved[0], moved[1])) / (b.time - t0), 3),
            "heading_end_rad": round(float(heading), 3),  # started at 0, standing 3 s first
            "max_tilt_rad": round(tilt, 3),
        }

    out: dict[str, object] = {name: run(values, True) for name, values in POSTURE_COMMANDS.items()}
    for name in UNCAPPED:
        out[name + " (no speed cap)"] = run(POSTURE_COMMANDS[name], False)
    return out


def bench_bridge_cycle(rounds: int, cycles: int) -> dict[str, object]:
    from go2_bridge.go2 import STAND_POSE
    from go2_bridge.lowcmd import fill_lowcmd, init_lowcmd
    from go2_bridge.lowstate import parse_lowstate
    from go2_bridge.safety import JointTargetsData, Mode, SafetyConfig, SafetyCore
    from unitree_go.msg import LowCmd, LowState

    ls = LowState()
    for i in range(12):
        ls.motor_state[i].q = float(STAND_POSE[i])
    ls.imu_state.quaternion[0] = 1.0
    targets = JointTargetsData(STAND_POSE.copy(), np.zeros(12), np.full(12, 20.0), np.full(12, 0.5), np.zeros(12))
    results = []
    for _ in range(rounds):
        core = SafetyCore(SafetyConfig(stand_up_duration_s=0.01))
        cmd = init_lowcmd(LowCmd())
        core.on_lowstate(parse_lowstate(ls), 0.0)
        core.request("stand_up", 0.0)
        core.on_targets(targets, 0.02)
        core.on_lowstate(parse_lowstate(ls), 0.02)
        core.step(0.02)
        assert core.request("activate", 0.02)[0]
        ms = []
        for i in range(cycles):
            now = 0.02 + i * 0.002
            t0 = time.perf_counter()
            core.on_lowstate(parse_lowstate(ls), now)
            core.on_targets(targets, now)
            fill_lowcmd(cmd, core.step(now))
            ms.append((time.perf_counter() - t0) * 1e3)
        assert core.mode is Mode.ACTIVE
        results.append(_stats(ms))
    return _rounds_summary(results)


def _diag_values(diags: list, prefix: str) -> dict[str, str] | None:
    for d in reversed(diags):
        for s in d.status:
            if s.name.startswith(prefix):
                return {kv.key: kv.value for kv in s.values}
    return None


def bench_loops(seconds: float, with_controller: bool) -> dict[str, object]:
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from more_ros import names
    from more_ros.qos import LATCHED_QOS, SENSOR_QOS, STATUS_QOS
    from more_ros.testing import NodeProcess, Probe

    # Staleness timeouts relaxed as in the tests: starting torch in the controller process starves the
    # others for a moment on 2 cores; the periods measured do not depend on these values.
    relaxed = {"lowstate_timeout_s": 0.25, "target_timeout_s": 0.25}
    procs = [NodeProcess("go2_sim.node"), NodeProcess("go2_bridge.bridge_node", relaxed)]
    probe = Probe("bench_robot")
    try:
        diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        states = probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
        joints = probe.listen(JointState, names.JOINT_STATES, SENSOR_QOS)  # the bridge hears the robot
        assert probe.spin_until(lambda: joints and states and states[-1].data.startswith("PASSIVE"), 60), procs[
            1
        ].output()
        probe.spin_for(1.0)
        response = probe.call(Trigger, names.BRIDGE_STAND_UP)
        assert response.success, response.message
        if with_controller:
            procs.append(NodeProcess("wtw_controller.controller_node"))  # velocity backend, bundled policy
            assert probe.spin_until(lambda: _diag_values(diags, "wtw_controller") is not None, 60)
            probe.spin_for(2.5)
            response = probe.call(Trigger, names.BRIDGE_ACTIVATE)
            assert response.success, f"{response.message} ({states[-1].data})"
        probe.spin_for(seconds)
        bridge = _diag_values(diags, "go2_bridge")
        state = states[-1].data
        result: dict[str, object] = {
            "bridge_state": state,
            "bridge_period_ms": {k: float(bridge[f"period_{k}_ms"]) for k in ("p50", "p99", "max")},
        }
        if with_controller:
            ctl = _diag_values(diags, "wtw_controller")
            result["controller_period_ms"] = {k: float(ctl[f"period_{k}_ms"]) for k in ("p50", "p99", "max")}
            result["controller_step_ms"] = {k: float(ctl[f"step_{k}_ms"]) for k in ("p50", "p99")}
        return result
    finally:
        probe.close()
        for p in procs:
            p.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line (the default indents it)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000, help="controller steps / 10 x bridge cycles per round")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each loop measurement")
    parser.add_argument("--sim-seconds", type=float, default=10.0, help="simulated seconds per physics round")
    parser.add_argument("--no-tracking", action="store_true", help="skip the tracking and posture runs (~1.5 min)")
    parser.add_argument("--no-ros", action="store_true", help="skip the cross-process loop measurements")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    results: dict[str, object] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        run = make_wtw_sized_run(Path(tmp))
        results["physics_rtf"] = bench_physics_rtf(args.rounds, args.sim_seconds)
        if not args.no_tracking:
            results["tracking"] = bench_tracking()
            results["posture"] = bench_posture()
        results["controller_step_ms"] = bench_controller_step(run, args.rounds, args.steps)
        results["velocity_step_ms"] = bench_velocity_step(args.rounds, args.steps)
        results["bridge_cycle_ms"] = bench_bridge_cycle(args.rounds, args.steps * 10)
        if not args.no_ros:
            results["loops"] = {
                "sim+bridge": bench_loops(args.seconds, with_controller=False),
                "sim+bridge+controller": bench_loops(args.seconds, with_controller=True),
            }
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
