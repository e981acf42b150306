"""Fault-reaction benchmarks: how fast the stack reacts to a fault, as p50 / max over repeated trials, cross-process.

Each fault is a `Fault` subclass: `start(workdir)` starts the processes it needs (and its Probe), `trial()`
provokes the fault once and returns the reaction time [ms] (raising TrialError when a trial went wrong),
`report()` adds what else it checked, `close()` stops everything. FAULTS lists them by name; to add one, write
a subclass next to StaleImageStop and add it to FAULTS. Every reaction is measured in this process with
time.monotonic() (CLOCK_MONOTONIC, shared by all processes on the machine).

- stale_image_stop: the policy node (tiny random-weight checkpoint, default parameters: rate_hz 5, image
  timeout 0.5 s) gets images from this process at 30 fps until it publishes a model command; then the images
  stop. Reaction = first stop command received - last image published; bound: image_timeout_s + 100 ms.
  Also counts model commands received after that stop (must be 0: commands stay ordered) and reactions
  shorter than the timeout (`early`: only possible if the last images were lost in transport, or a bug).
  The images are 64x48 rgb8 (`--image-size`): 640x480 best-effort images get dropped on a loaded machine,
  and a dropped last image would move the fault earlier than the moment measured.

`python bench/bench_faults.py --json [--trials 30] [--only NAME ...]` prints one JSON object on its last line:
per fault the trials' reactions, p50, max, the bound and how many trials kept it, with the load average.
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


class TrialError(RuntimeError):
    """A trial could not be carried out (the node did not come up, no reaction within the wait)."""


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


def _is_stop(cmd) -> bool:
    return cmd.bins[0] < 0 and cmd.vx == 0.0 and cmd.vy == 0.0 and cmd.wz == 0.0


class StaleImageStop(Fault):
    name = "stale_image_stop"
    image_timeout_s = 0.5  # the policy node's default
    fps = 30.0
    image_size = (48, 64)

    def start(self, workdir: Path) -> None:
        from sensor_msgs.msg import Image

        from more_model.testing import make_tiny_checkpoint
        from more_msgs.msg import QuadrupedCommand
        from more_ros import names
        from more_ros.qos import COMMAND_QOS, SENSOR_QOS
        from more_ros.testing import NodeProcess, Probe

        checkpoint = make_tiny_checkpoint(workdir / "tiny", seed=0)
        self.bound_ms = self.image_timeout_s * 1e3 + 100.0
        self.proc = NodeProcess(
            "more_vla_policy.policy_node",
            {"checkpoint": str(checkpoint), "enabled": True, "instruction": "go to the red ball"},
        )
        self.probe = Probe("bench_faults_stale_image")
        self.images = self.probe.node.create_publisher(Image, names.CAMERA_IMAGE, SENSOR_QOS)
        self.commands = self.probe.listen(QuadrupedCommand, names.COMMAND, COMMAND_QOS, stamp=True)
        self.frame = np.random.default_rng(0).integers(0, 256, (*self.image_size, 3), dtype=np.uint8)
        self.after_stop = 0
        self.early = 0
        if not self.probe.spin_until(lambda: self.commands or not self.proc.alive, timeout=120):
            raise TrialError(f"policy node did not come up: {self.proc.output()[-1500:]}")

    def _publish(self) -> None:
        from more_ros.testing import image_message

        self.images.publish(image_message(self.frame, self.probe.node.get_clock().now().nanoseconds))

    def trial(self) -> float:
        probe, commands = self.probe, self.commands
        n = len(commands)
        decided = lambda: any(c.bins[0] >= 0 for _, c in commands[n:])  # noqa: E731
        if not probe.spin_until(decided, timeout=30, action=self._publish, every=1 / self.fps):
            raise TrialError("no model command while images came")
        self._publish()
        last_image = time.monotonic()
        n = len(commands)
        stopped = lambda: any(_is_stop(c) for _, c in commands[n:])  # noqa: E731
        if not probe.spin_until(stopped, timeout=self.image_timeout_s + 5):
            raise TrialError("no stop within image_timeout_s + 5 s of the last image")
        first = next(i for i, (_, c) in enumerate(commands[n:], n) if _is_stop(c))
        probe.spin_for(0.3)  # anything that comes after the stop
        self.after_stop += sum(int(c.bins[0] >= 0) for _, c in commands[first:])
        reaction_ms = (commands[first][0] - last_image) * 1e3
        self.early += int(reaction_ms < self.image_timeout_s * 1e3)
        return reaction_ms

    def report(self) -> dict:
        return {
            "model_commands_after_stop": self.after_stop,
            "image_timeout_s": self.image_timeout_s,
            "images": f"{self.image_size[1]}x{self.image_size[0]} rgb8 at {self.fps:g} fps until the model decides",
            "early": self.early,
            "policy": "tiny random-weight MoRE, the node's default parameters (rate_hz 5.0, image_timeout_s 0.5)",
        }

    def close(self) -> None:
        probe, proc = getattr(self, "probe", None), getattr(self, "proc", None)
        if probe is not None:
            probe.close()
        if proc is not None:
            proc.stop()


FAULTS: dict[str, type[Fault]] = {StaleImageStop.name: StaleImageStop}


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
    parser = argparse.ArgumentParser(prog="bench_faults.py", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="(always JSON; accepted for bench/run_all.py)")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--only", nargs="+", choices=sorted(FAULTS), help="run only these faults")
    parser.add_argument("--image-size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    args = parser.parse_args(argv)
    StaleImageStop.image_size = tuple(args.image_size)
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
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
