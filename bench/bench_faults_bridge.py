"""Fault-reaction benchmarks of the Go2 bridge: how fast it damps, as p50 / max over repeated trials, cross-process.

Written in the style of bench/bench_faults.py (same Fault interface: start / trial / report / close, same JSON
fields), so the two faults here can move into its FAULTS table. The bridge runs as its own process; this
process plays the robot (healthy LowState every 5 ms, with its CRC) and the controller (sane JointTargets at
50 Hz), takes the bridge to ACTIVE before each trial (reset, stand_up, activate), provokes the fault and
measures with time.monotonic() (CLOCK_MONOTONIC, shared by all processes on the machine) until the first
damping LowCmd (kp 0, kd = damping_kd on all 12 motors) arrives here.

- target_loss_damping: the targets stop. Reaction = first damping LowCmd received - last target published.
  Design bound (test_safety.py, cycle-exact): target_timeout_s (default 0.1 s) + one 2 ms cycle; the bound
  here adds 50 ms for DDS delivery both ways and scheduling. `early` counts reactions shorter than the
  timeout (only possible if the last target was lost in transport, or a bug).
- estop_damping: /more/estop true. Reaction = first damping LowCmd received - e-stop published. Design bound:
  the next 2 ms cycle; + 50 ms as above.
- lowstate_input_cost (in process, no DDS): what the checks cost per LowState at 500 Hz, side by side in one run:
  parse_lowstate alone (the old path) against LowStateInput.on_message (CRC over the 1180-byte struct, parse,
  core update, reading checks, remote combos) on a unitree_go/LowState; ms per frame, best and median of the
  rounds' medians.
Bridge parameters: defaults (target_timeout_s 0.1, rate 500 Hz), except stand_up_duration_s 0.1,
activate_blend_s 0, min_damping_s 0.05 (quick trials) and lowstate_timeout_s 1.0: this process's LowState can
stall for tens of ms on a loaded machine, and a stale-LowState damping would pre-empt the fault measured.

`python bench/bench_faults_bridge.py --json [--trials 20] [--only NAME ...]` prints one JSON object on its last
line: per fault the trials' reactions, p50, max, the bound and how many trials kept it, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DAMPING_KD = 3.0  # the bridge's default damping_kd
TARGET_TIMEOUT_S = 0.1  # the bridge's default target_timeout_s
CYCLE_MS = 2.0
SLACK_MS = 50.0
BRIDGE_PARAMS = {"stand_up_duration_s": 0.1, "activate_blend_s": 0.0, "min_damping_s": 0.05, "lowstate_timeout_s": 1.0}


class TrialError(RuntimeError):
    """A trial could not be carried out (the bridge did not come up or reach ACTIVE, no reaction in time)."""


class Fault:
    name = ""
    bound_ms = float("nan")

    def start(self, workdir: Path) -> None:
        raise NotImplementedError

    def trial(self) -> float:
        raise NotImplementedError

    def report(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def _is_damping(msg) -> bool:
    return all(m.kp == 0.0 and m.kd == DAMPING_KD for m in msg.motor_cmd[:12])


class BridgeFault(Fault):
    """The bridge process, a fake robot and a fake controller; subclasses provoke one fault per trial."""

    def start(self, workdir: Path) -> None:
        from std_msgs.msg import Bool, String

        from go2_bridge.go2 import STAND_POSE
        from go2_bridge.lowstate_wire import lowstate_crc
        from more_msgs.msg import JointTargets
        from more_ros import names
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
        from more_ros.testing import NodeProcess, Probe
        from unitree_go.msg import LowCmd, LowState

        self.names = names
        self.proc = NodeProcess("go2_bridge.bridge_node", BRIDGE_PARAMS)
        self.probe = Probe(f"bench_faults_{self.name}")
        node = self.probe.node
        self.lowstate_pub = node.create_publisher(LowState, names.LOWSTATE, SENSOR_QOS)
        self.targets_pub = node.create_publisher(JointTargets, names.JOINT_TARGETS, COMMAND_QOS)
        self.estop_pub = node.create_publisher(Bool, names.ESTOP, COMMAND_QOS)
        self.lowcmds = self.probe.listen(LowCmd, names.LOWCMD, SENSOR_QOS, stamp=True)
        self.states = self.probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
        self.Bool = Bool
        self.lowstate = LowState()
        for i in range(12):
            self.lowstate.motor_state[i].q = float(STAND_POSE[i])
        self.lowstate.imu_state.quaternion[0] = 1.0
        self.lowstate.crc = lowstate_crc(self.lowstate)
        self.targets = JointTargets()
        self.targets.position, self.targets.kp, self.targets.kd = STAND_POSE.tolist(), [20.0] * 12, [0.5] * 12
        self.feed_targets = True
        self.last_target = -np.inf
        self.early = 0
        if not self.probe.spin_until(
            lambda: (self.lowcmds and self.states) or not self.proc.alive, 60, self.act, 0.005
        ):
            raise TrialError(f"bridge did not come up: {self.proc.output()[-1500:]}")

    def act(self) -> None:
        self.lowstate_pub.publish(self.lowstate)
        now = time.monotonic()
        if self.feed_targets and now - self.last_target >= 0.02:
            self.targets_pub.publish(self.targets)
            self.last_target = now

    @property
    def state(self) -> str:
        return self.states[-1].data if self.states else ""

    def _call(self, service: str) -> None:
        from std_srvs.srv import Trigger

        self.probe.call(Trigger, service, action=self.act)

    def to_active(self) -> None:
        n = self.names
        self.feed_targets = True
        self.estop_pub.publish(self.Bool(data=False))
        self.probe.spin_for(0.15, self.act, every=0.005)  # the last trial's state change may still be on its way
        for _ in range(5):
            if self.state.startswith("ACTIVE"):
                return
            if self.state.startswith("DAMPING"):
                self.probe.spin_for(0.1, self.act, every=0.005)
                self._call(n.BRIDGE_RESET)
            elif self.state.startswith("PASSIVE"):
                self._call(n.BRIDGE_STAND_UP)
                self.probe.spin_for(0.2, self.act, every=0.005)
            elif self.state.startswith("STAND_UP"):
                self._call(n.BRIDGE_ACTIVATE)
            self.probe.spin_until(lambda: False, 0.05, self.act, 0.005)
        if not self.state.startswith("ACTIVE"):
            raise TrialError(f"could not reach ACTIVE (state {self.state!r})")

    def first_damping_after(self, t0: float, timeout: float) -> float:
        """Receipt time of the first damping LowCmd received after t0."""

        def damped() -> bool:
            return any(t > t0 and _is_damping(m) for t, m in self.lowcmds[-50:])

        if not self.probe.spin_until(damped, timeout, self.act, every=0.005):
            raise TrialError(f"no damping LowCmd within {timeout} s (state {self.state!r})")
        t = next(t for t, m in self.lowcmds if t > t0 and _is_damping(m))
        del self.lowcmds[:-100]
        return t

    def close(self) -> None:
        probe, proc = getattr(self, "probe", None), getattr(self, "proc", None)
        if probe is not None:
            probe.close()
        if proc is not None:
            proc.stop()


class TargetLossDamping(BridgeFault):
    name = "target_loss_damping"
    bound_ms = TARGET_TIMEOUT_S * 1e3 + CYCLE_MS + SLACK_MS

    def trial(self) -> float:
        self.to_active()
        self.probe.spin_for(0.3, self.act, every=0.005)
        if not self.state.startswith("ACTIVE"):
            raise TrialError(f"left ACTIVE before the fault: {self.state!r}")
        self.feed_targets = False
        last = self.last_target
        reaction_ms = (self.first_damping_after(last, 5.0) - last) * 1e3
        self.early += int(reaction_ms < TARGET_TIMEOUT_S * 1e3)
        return reaction_ms

    def report(self) -> dict:
        return {"early": self.early, "design_bound_ms": TARGET_TIMEOUT_S * 1e3 + CYCLE_MS,
                "target_timeout_s": TARGET_TIMEOUT_S}  # fmt: skip


class EstopDamping(BridgeFault):
    name = "estop_damping"
    bound_ms = CYCLE_MS + SLACK_MS

    def trial(self) -> float:
        self.to_active()
        self.probe.spin_for(0.2, self.act, every=0.005)
        if not self.state.startswith("ACTIVE"):
            raise TrialError(f"left ACTIVE before the fault: {self.state!r}")
        t0 = time.monotonic()
        self.estop_pub.publish(self.Bool(data=True))
        return (self.first_damping_after(t0, 5.0) - t0) * 1e3

    def report(self) -> dict:
        return {"design_bound_ms": CYCLE_MS}


def bench_lowstate_input(rounds: int = 5, frames: int = 2000) -> dict:
    import statistics

    from go2_bridge.go2 import STAND_POSE
    from go2_bridge.inputs import InputMonitor, LowStateInput
    from go2_bridge.lowstate import parse_lowstate
    from go2_bridge.lowstate_wire import lowstate_crc
    from go2_bridge.remote import ComboDetector
    from go2_bridge.safety import SafetyCore
    from unitree_go.msg import LowState

    msg = LowState()
    for i in range(12):
        msg.motor_state[i].q = float(STAND_POSE[i])
    msg.imu_state.quaternion[0] = 1.0
    msg.crc = lowstate_crc(msg)
    inputs = LowStateInput(SafetyCore(), InputMonitor(), ComboDetector())
    variants = {"parse_only": lambda t: parse_lowstate(msg), "checked_input": lambda t: inputs.on_message(msg, t)}
    medians: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():  # alternating, so both see the same machine state
            ms = []
            for i in range(frames):
                t0 = time.perf_counter()
                fn(i * 0.002)
                ms.append((time.perf_counter() - t0) * 1e3)
            medians[name].append(float(np.median(ms)))
    assert inputs.crc_errors == 0 and inputs.accepted == rounds * frames
    out = {k: {"best_ms": round(min(v), 4), "median_ms": round(statistics.median(v), 4)} for k, v in medians.items()}
    out["added_ms"] = round(out["checked_input"]["median_ms"] - out["parse_only"]["median_ms"], 4)
    return out


FAULTS: dict[str, type[Fault]] = {TargetLossDamping.name: TargetLossDamping, EstopDamping.name: EstopDamping}


def run_fault(fault: Fault, trials: int, workdir: Path) -> dict:
    reactions: list[float] = []
    errors: list[str] = []
    try:
        fault.start(workdir)
        for _ in range(trials):
            try:
                reactions.append(fault.trial())
            except TrialError as err:
                errors.append(str(err))
        extra = fault.report()
    except TrialError as err:
        return {"error": str(err)}
    finally:
        fault.close()
    arr = np.asarray(reactions, dtype=np.float64)
    return {
        "trials": len(reactions),
        "failed_trials": errors,
        "p50_ms": round(float(np.percentile(arr, 50)), 1) if arr.size else None,
        "max_ms": round(float(arr.max()), 1) if arr.size else None,
        "bound_ms": fault.bound_ms,
        "within_bound": int((arr <= fault.bound_ms).sum()),
        "reactions_ms": [round(float(r), 1) for r in arr],
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_faults_bridge.py", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="(always JSON; accepted for bench/run_all.py)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", nargs="+", choices=sorted(FAULTS), help="run only these faults")
    args = parser.parse_args(argv)
    if args.trials < 1:
        print(f"error: --trials must be >= 1, got {args.trials}", file=sys.stderr)
        return 2
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    result: dict = {"cpu_count": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or sorted(FAULTS):
            workdir = Path(tmp) / name
            workdir.mkdir()
            result[name] = run_fault(FAULTS[name](), args.trials, workdir)
    if not args.only:
        result["lowstate_input_cost"] = bench_lowstate_input()
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
