"""more-stack: start a stack's nodes from the launch files' YAML, each its own process (no `ros2 launch` needed).

    more-stack sim    [--params launch/config/sim.yaml]    simulator node + policy node (kinematic base)
    more-stack sim --embodiment go2 [--time-scale auto|X]  the whole chain on the physics Go2 (sim_go2.yaml):
                      simulator (the robot on LowCmd/LowState) + policy + controller + bridge
    more-stack robot  [--params launch/config/robot.yaml]  camera + policy + wtw controller + Go2 bridge
    more-stack robot --backend sport                       camera + policy + Go2 sport-mode backend
    more-stack replay --bag BAG [--params ...]             bag player + policy node

The same nodes (more_bringup.stacks.STACKS) and the same parameter file as launch/{sim,robot,replay}.launch.py;
the robot stack's `--backend` (lowlevel, the default, or sport) is robot.launch.py's `backend:=`.
Every section of the file is checked before anything starts (unknown node, unknown key or wrong type: exit 2
naming it). Each node runs in its own OS process, as under `ros2 launch`; this process supervises them: when
one ends unexpectedly the others are stopped (SIGINT: the bridge damps first) and the exit status is 1.
`--record DIR` also records the stack's topics to an MCAP bag. `more-stack sim --instruction TEXT --json` runs
simulated episodes with the demo checkpoint (or --checkpoint) and prints JSON with success, steps, task,
mean_step_latency_ms, embodiment, tracking (commanded vs achieved vx, vy, wz: RMSE), falls and, per episode and
counted (`ends`), how each episode ended (the simulator's EpisodeEnd: success, wrong_stop, time_limit, fall, ...).

With `--embodiment go2` every node's rates and durations follow one time scale (more_bringup.dilation:
`--time-scale`, default auto) and this process brings the bridge up through its real state machine: stand_up,
then activate, and after a fall reset, stand_up, activate (more_sim_ros.bridge_bringup). Only in this simulated
mode: the robot stack is never stood up or activated by this program (a person does that, docs/deployment.md).
`--video DIR` writes one video per episode (the robot's camera with the decoded command and Q-values beside a
third-person view of the Go2) and lists the paths in the JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from more_bringup.monitor import count_ends
from more_bringup.stacks import (
    DEFAULT_BACKEND,
    PLAYER,
    POLICY,
    RECORDER,
    ROBOT_BACKENDS,
    SHARED_CONFIG,
    STACKS,
    WORLD,
    NodeSpec,
    config_file,
    configured_nodes,
    stack_for,
)
from more_common.cli import OneLineArgumentParser, file_in_the_way

SIM = WORLD.name
MODES = ("robot", "sim", "replay")
END_GRACE_S = 1.0  # [s] the stack runs on after the last episode's end, so a recorder or a video gets it too
POLICY_READY_TIMEOUT_S = 180.0  # loading a full-size checkpoint takes a while
COMMAND_MATCH_TIMEOUT_S = 60.0  # DDS discovery between processes: seconds, even on a loaded machine
GO2_EPISODE_S = 30.0  # [simulated s] per episode the go2 stack's default timeout allows (20 s limit + reset)
GO2_BRINGUP_S = 20.0  # [simulated s] to stand up and activate before the first episode
MODULE_NODE_NAMES = {spec.module: spec.name for stack in STACKS.values() for spec in stack} | {
    RECORDER.module: RECORDER.name
}


def node_name(module: ModuleType) -> str:
    return MODULE_NODE_NAMES[module.__name__]


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="more-stack",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("mode", choices=MODES, help="which stack to start")
    p.add_argument(
        "--embodiment",
        choices=("kinematic", "go2"),
        default="kinematic",
        help="sim: kinematic base (default) or the whole chain on the physics Go2",
    )
    p.add_argument(
        "--time-scale",
        default="auto",
        help="sim --embodiment go2: simulated seconds per wall second for every node (auto: 1 with >= 8 idle CPUs, "
        "else 0.2)",
    )
    p.add_argument("--video", default=None, metavar="DIR", help="sim: write one video per episode into DIR")
    p.add_argument("--params", default="", help="ROS 2 parameter file (default launch/config/<mode>.yaml)")
    p.add_argument(
        "--backend", default=None, choices=sorted(ROBOT_BACKENDS),
        help="robot: the locomotion backend: lowlevel (default: controller + bridge, LowCmd) | sport (the Go2's own "
        "locomotion through its sport API)",
    )  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE", help="override a parameter")
    p.add_argument("--instruction", default=None, help="the instruction (policy_node and, in sim, more_sim)")
    p.add_argument("--task", default=None, help="sim: the task to simulate (more_sim.task), e.g. go_to, crawl")
    p.add_argument("--checkpoint", default=None, help="policy checkpoint directory (default: the demo checkpoint)")
    p.add_argument("--bag", default=None, help="replay: the bag to play (bag_player.bag)")
    p.add_argument("--record", default=None, metavar="DIR", help="record the stack's topics to this MCAP bag")
    p.add_argument("--episodes", type=int, default=1, help="sim: stop after this many episodes (default 1)")
    p.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (0: sim 300, else none)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def stack_of(args: argparse.Namespace) -> str:
    """The stack a command line runs: sim with --embodiment go2 is sim_go2, robot with --backend sport robot_sport."""
    from more_common.errors import ConfigurationError

    if args.embodiment == "go2":
        if args.mode != "sim":
            raise ConfigurationError("--embodiment go2 applies to the sim stack only")
        return "sim_go2"
    try:
        return stack_for(args.mode, args.backend)
    except ValueError as err:
        raise ConfigurationError(str(err)) from err


def time_scale(args: argparse.Namespace) -> float:
    from more_bringup.dilation import auto_scale
    from more_common.errors import ConfigurationError

    if args.time_scale == "auto":
        return auto_scale()
    try:
        scale = float(args.time_scale)
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and 0.0 < scale <= 1.0):
        raise ConfigurationError(f"--time-scale must be auto or a number in (0, 1], got {args.time_scale!r}")
    return scale


def load_modules(mode: str, record: bool) -> list[ModuleType]:
    """The node modules whose parameters launch/config/<mode>.yaml holds (every backend of the robot stack: the
    file configures both, and each section is checked whichever backend runs)."""
    from more_common.errors import ConfigurationError

    modules = []
    for name in (*(spec.module for spec in configured_nodes(mode)), *((RECORDER.module,) if record else ())):
        try:
            modules.append(importlib.import_module(name))
        except ImportError as err:
            raise ConfigurationError(f"the {mode} stack needs {name}, which cannot be imported: {err}") from err
    return modules


def effective_params(args: argparse.Namespace, modules: list[ModuleType]) -> dict[str, dict[str, Any]]:
    """Read and check the parameter file, apply the command line's overrides; {node: {param: value}}."""
    import yaml

    from more_common.errors import ConfigurationError
    from more_ros.params import load_params_file, validate_params

    stack = stack_of(args)
    path = Path(args.params) if args.params else config_file(stack)
    sections = load_params_file(path)
    overrides: list[tuple[str, str, Any]] = []
    for item in args.set:
        key, sep, raw = item.partition("=")
        node, dot, param = key.partition(".")
        if not (sep and dot and node and param):
            raise ConfigurationError(f"--set {item!r} must look like node.param=value")
        try:
            overrides.append((node, param, yaml.safe_load(raw)))
        except yaml.YAMLError as err:
            raise ConfigurationError(f"--set {item!r}: the value is not valid YAML") from err
    if args.instruction is not None:
        overrides.append((POLICY.name, "instruction", args.instruction))
        if args.mode == "sim":  # the simulator announces its episode's instruction: make it this one
            overrides.append((SIM, "instruction", args.instruction))
    if args.task is not None:
        if args.mode != "sim":
            raise ConfigurationError("--task applies to the sim stack only")
        overrides.append((SIM, "task", args.task))
    if args.checkpoint is not None:
        overrides.append((POLICY.name, "checkpoint", str(Path(args.checkpoint).resolve())))
    if args.bag is not None:
        overrides.append((PLAYER.name, "bag", str(Path(args.bag).resolve())))
    if args.mode == "replay":  # the player ends its process when the bag is played: the runner's end condition
        overrides.append((PLAYER.name, "exit_when_done", True))
    if args.record is not None:
        overrides.append((RECORDER.name, "path", str(Path(args.record).resolve())))
    for node, param, value in overrides:
        sections.setdefault(node, {})[param] = value
    if args.mode == "sim":  # the simulator renders what the model was trained on (more_bringup.sim_camera)
        from more_bringup.sim_camera import policy_camera_size

        sections.setdefault(SIM, {}).update(policy_camera_size(sections))
    for node, param, count in connection_gates(stack, args.record is not None):
        section = sections.setdefault(node, {})
        if isinstance(section.get(param, 0), int):  # else validation names the file's bad value
            section[param] = max(count, section.get(param, 0))
    specs = {node_name(m): getattr(m, "PARAMS", None) for m in modules}
    recorder = importlib.import_module(RECORDER.module)
    specs.setdefault(RECORDER.name, recorder.PARAMS)  # a file may configure recording for --record
    try:
        validate_params(sections, specs)  # raises naming node.param
    except ConfigurationError as err:
        raise ConfigurationError(f"{path}{' with the command-line overrides' if overrides else ''}: {err}") from err
    if args.record is None:
        sections.pop(RECORDER.name, None)
    if stack == "sim_go2":
        from more_bringup.dilation import dilate

        if sections.get(SIM, {}).get("embodiment", "kinematic") != "go2":
            raise ConfigurationError(f"{path}: more_sim.embodiment must be go2 for --embodiment go2")
        sections = dilate(sections, specs, getattr(args, "scale", None) or time_scale(args))
        validate_params(sections, specs)
    return sections


def check_arguments(args: argparse.Namespace) -> None:
    """What the command line names, checked before any node starts (a node that fails on it later would cost the
    stack's start-up and leave the cause in its log): counts, the timeout, the checkpoint and the output paths."""
    from more_common.errors import ConfigurationError
    from more_model.checkpoint_meta import META_FILE

    if args.episodes < 1:
        raise ConfigurationError(f"--episodes must be >= 1, got {args.episodes}")
    if not (math.isfinite(args.timeout) and args.timeout >= 0):
        raise ConfigurationError(
            f"--timeout must be a finite number of seconds >= 0 (0: the default), got {args.timeout}"
        )
    if args.checkpoint is not None and not Path(args.checkpoint, META_FILE).is_file():
        raise ConfigurationError(f"--checkpoint {args.checkpoint!r} is not a checkpoint directory (no {META_FILE})")
    if args.record is not None and Path(args.record).exists():
        raise ConfigurationError(f"--record {args.record!r} exists already: the recorder writes a new bag")
    blocker = file_in_the_way(args.video) if args.video is not None else None
    if blocker is not None:
        raise ConfigurationError(f"--video {args.video!r}: {str(blocker)!r} is a file, not a directory")


def check_inputs(sections: dict[str, dict[str, Any]], stack: str) -> None:
    """The replay stack's bag (from --bag or the parameter file) must be there before the player starts."""
    from more_common.errors import ConfigurationError

    if stack == "replay":
        bag = sections.get(PLAYER.name, {}).get("bag", "")
        if not bag:
            raise ConfigurationError("the replay stack needs a bag: --bag BAG (or bag_player.bag in --params)")
        if not Path(bag).exists():
            raise ConfigurationError(f"bag {bag!r} does not exist")


def connection_gates(stack: str, record: bool) -> list[tuple[str, str, int]]:
    """What the stack's data source waits for before its first message: (node, parameter, count).

    DDS discovery takes seconds on a busy machine; a simulator episode or a bag played before the policy, this
    runner's monitor and the recorder are matched would be lost to them (and the JSON and the bag short). The
    readers are counted here, where the stack's node list is known: the policy and the monitor read the camera,
    the monitor reads episode status, the recorder reads both.
    """
    extra = 1 if record else 0
    if stack == "replay":
        return [(PLAYER.name, "min_subscribers", 2 + extra)]
    if stack in ("sim", "sim_go2"):
        return [
            (SIM, "wait_for_image_subscribers", 2 + extra),
            (SIM, "wait_for_status_subscribers", 1 + extra),
            (SIM, "wait_for_command_publishers", 1),  # the command mux (sim) or the policy (sim_go2)
        ]
    return []


def write_params_file(sections: dict[str, dict[str, Any]], directory: str) -> Path:
    import yaml

    path = Path(directory) / "more_stack_params.yaml"
    path.write_text(yaml.safe_dump({node: {"ros__parameters": values} for node, values in sections.items()}))
    return path


class StackError(RuntimeError):
    """A node of the stack ended or did not come up; the message names it."""


class StopRequestedError(Exception):
    """SIGINT or SIGTERM reached the runner while its stack ran."""


class StopSignals:
    """The runner's SIGINT/SIGTERM handler: it notes the signal, and the runner's loops (each turn at most 50 ms)
    raise StopRequestedError. A KeyboardInterrupt raised wherever the main thread happens to be can be lost (raised
    inside a destructor or a callback it is printed as "Exception ignored" and the stack runs on) or leave a lock of
    the executor held; a Ctrl-C must always stop the motors."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.received = signum

    def check(self) -> None:
        if self.received is not None:
            raise StopRequestedError(signal.Signals(self.received).name)


STOP_SIGNALS = StopSignals()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from more_bringup.monitor import Monitor
    from more_bringup.supervisor import NodeProcesses

    stack = stack_of(args)
    go2 = stack == "sim_go2"
    args.scale = time_scale(args) if go2 else 1.0
    check_arguments(args)
    modules = load_modules(SHARED_CONFIG.get(stack, stack), args.record is not None)
    sections = effective_params(args, modules)
    check_inputs(sections, stack)
    timeout = args.timeout or default_timeout(args)
    # The recorder starts first so it sees every topic from its first message.
    specs = [*((RECORDER,) if args.record is not None else ()), *STACKS[stack]]
    result: dict[str, Any] = {"mode": args.mode}
    if args.mode == "robot":
        result["backend"] = args.backend or DEFAULT_BACKEND
    if args.mode == "sim":
        result["embodiment"] = args.embodiment
    with tempfile.TemporaryDirectory(prefix="more-stack-") as tmp:
        params_file = write_params_file(sections, tmp)
        # the runner owns Ctrl-C (StopSignals: stop the nodes, then report). rclpy's own handler would shut the
        # context down under it, and the shutdown at the end raised a traceback.
        rclpy.init(args=["more-stack"], signal_handler_options=SignalHandlerOptions.NO)
        monitor = Monitor(bring_up_bridge=go2, video=args.video)
        executor = SingleThreadedExecutor()
        executor.add_node(monitor.node)
        STOP_SIGNALS.received = None
        previous = {sig: signal.signal(sig, STOP_SIGNALS) for sig in (signal.SIGINT, signal.SIGTERM)}
        processes = NodeProcesses()
        start = time.monotonic()
        try:
            for spec in specs:
                processes.start(spec, params_file, spec.ros_args())
                # what follows (simulator episodes, bag playback, motors) waits for the model
                if spec.name == POLICY.name:
                    _wait_for_policy(executor, monitor, processes)
                if spec.name in (WORLD.name, PLAYER.name):  # the data source: the first episode starts soon
                    _wait_for_first_command(executor, monitor, processes)
            _supervise(args, executor, monitor, processes, start + timeout)
        except StopRequestedError:
            result["interrupted"] = True
        except StackError as err:
            result["error"] = str(err)
        finally:
            try:
                result["exit_status"] = processes.stop()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if processes.interrupted_while_stopping or STOP_SIGNALS.received is not None:
                result["interrupted"] = True
        result["seconds"] = round(time.monotonic() - start, 3)
        result.update(monitor.summary())
        result.update(_mode_result(args, monitor, sections))
        if args.mode == "sim":
            result.update(monitor.motion())
        if go2:
            result["time_scale"] = args.scale
            result["bridge"] = monitor.bringup.summary()
            result["controller"] = monitor.controller_status
            result["bridge"]["diagnostics"] = monitor.bridge_status
        if args.video is not None:
            result["videos"] = monitor.finish_videos()
        # shut the executor down while the context lives: left to the garbage collector, its guard condition is
        # destroyed after rclpy.shutdown() and prints a traceback on the way out (seen in CI)
        executor.shutdown()
        monitor.destroy()
        rclpy.try_shutdown()
    if args.record is not None:
        result["record"] = {"path": str(Path(args.record).resolve()), "messages": _bag_counts(Path(args.record))}
    return result


def _check_children(processes: Any, allowed_exit: NodeSpec | None = None) -> bool:
    """Raise StackError if a node ended; True if `allowed_exit` ended with status 0 (its job done). A Ctrl-C comes
    first: in a terminal it reaches the nodes too, and one that ended of it is not a failure."""
    STOP_SIGNALS.check()
    done = False
    for child in processes.exited():
        if child.spec == allowed_exit and child.returncode == 0:
            done = True
            continue
        raise StackError(f"node {child.spec.name} ({child.spec.executable}) exited with status {child.returncode}")
    return done


def _spin_until(executor: Any, processes: Any, done: Any, timeout_s: float, failure: str) -> None:
    """Spin the runner's node until `done()`, raising StackError(`failure`) after `timeout_s` or if a node ends."""
    deadline = time.monotonic() + timeout_s
    while not done():
        _check_children(processes)  # a Ctrl-C first
        if time.monotonic() > deadline:
            raise StackError(failure)
        executor.spin_once(timeout_sec=0.05)


def _wait_for_policy(executor: Any, monitor: Any, processes: Any) -> None:
    failure = f"{POLICY.name} did not report within {POLICY_READY_TIMEOUT_S:.0f} s"
    _spin_until(executor, processes, lambda: monitor.policy_statuses > 0, POLICY_READY_TIMEOUT_S, failure)


def _wait_for_first_command(executor: Any, monitor: Any, processes: Any) -> None:
    """Until this runner's monitor has received a command (the policy publishes stop commands before its first
    image). DDS discovery takes seconds on a busy machine and is not symmetric: the monitor's subscription can be
    matched while the publisher has not matched it yet and sends it nothing (measured: a crawl episode of 3 steps
    ended before the monitor had one command, and the JSON reported no decisions and no latency)."""
    failure = f"this runner received no command within {COMMAND_MATCH_TIMEOUT_S:.0f} s"
    _spin_until(executor, processes, lambda: monitor.commands > 0, COMMAND_MATCH_TIMEOUT_S, failure)


def default_timeout(args: argparse.Namespace) -> float:
    """sim: 300 s (kinematic), or the go2 stack's bring-up and episodes in simulated time over the time scale."""
    if args.mode != "sim":
        return math.inf
    if stack_of(args) == "sim_go2":
        return 60.0 + (GO2_BRINGUP_S + GO2_EPISODE_S * args.episodes) / args.scale
    return 300.0


def _supervise(args: argparse.Namespace, executor: Any, monitor: Any, processes: Any, deadline: float) -> None:
    """Spin until the mode's end (sim: episodes done; replay: bag played), the deadline, Ctrl-C or a node's end."""
    played_at = done_at = None
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        monitor.bring_up_step()  # sim --embodiment go2 only (nothing otherwise)
        if _check_children(processes, allowed_exit=PLAYER if args.mode == "replay" else None):
            played_at = played_at or time.monotonic()
        if args.mode == "sim" and len(monitor.episodes) >= args.episodes:
            done_at = done_at or time.monotonic()
        if done_at is not None and time.monotonic() - done_at > END_GRACE_S:  # the last episode's end: recorded too
            return
        if played_at is not None and time.monotonic() - played_at > 1.5:  # let the last decisions through
            return


def _bag_counts(path: Path) -> dict[str, int]:
    from more_vla_policy.replay.bag_io import BagError, read_messages

    counts: dict[str, int] = {}
    try:
        for topic, _, _, _ in read_messages(path, raw=True):
            counts[topic] = counts.get(topic, 0) + 1
    except BagError as err:
        return {"error": str(err)}  # type: ignore[dict-item]
    return counts


def _mode_result(args: argparse.Namespace, monitor: Any, sections: dict) -> dict:
    from more_vla_policy.checkpoint_path import resolve_checkpoint

    out: dict[str, Any] = {}
    if any(spec.name == POLICY.name for spec in STACKS[stack_of(args)]):
        out["checkpoint"] = str(resolve_checkpoint(sections.get(POLICY.name, {}).get("checkpoint", "")))
    if args.mode == "sim":
        episodes = [monitor.episodes[k] for k in sorted(monitor.episodes)][: args.episodes]
        first = episodes[0] if episodes else {}
        out.update(
            {
                "success": bool(first.get("success", False)),
                "steps": int(first.get("steps", 0)),
                "task": first.get("task", monitor.current.get("task", "")),
                "instruction": first.get("instruction", monitor.current.get("instruction", "")),
                "episodes": episodes,
                "success_rate": (sum(e["success"] for e in episodes) / len(episodes)) if episodes else 0.0,
                "ends": count_ends(episodes),
                "completed": len(episodes) >= args.episodes,
            }
        )
    if args.mode == "replay":
        out["images_played"] = monitor.images
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from more_common.errors import ConfigurationError

    try:
        result = run(args)
    except ConfigurationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the first node started (or after the last one stopped)
        print("more-stack: interrupted; no node of the stack is running", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2) if args.json else _summary(result))
    for path in result.get("videos", []):  # where people look first: the last lines
        print(f"video: {path}", file=sys.stderr)
    if "error" in result:
        print(f"error: {result['error']}", file=sys.stderr)
        return 1
    if args.mode == "sim":
        return 0 if result.get("completed") else 1
    return 0


def _summary(result: dict[str, Any]) -> str:
    keys = (
        "mode",
        "success",
        "steps",
        "task",
        "decisions",
        "commands",
        "mean_step_latency_ms",
        "embodiment",
        "tracking",
        "falls",
        "ends",
        "videos",
        "faults",
        "record",
        "error",
    )
    return "\n".join(f"{k}: {result[k]}" for k in keys if k in result)


if __name__ == "__main__":
    raise SystemExit(main())
