"""more-stack: start the stack's nodes in one process from the launch files' YAML (no `ros2 launch` needed).

    more-stack sim    [--params launch/config/sim.yaml]    simulator node + policy node
    more-stack robot  [--params launch/config/robot.yaml]  camera + policy + wtw controller + Go2 bridge
    more-stack replay --bag BAG [--params ...]             bag player + policy node

Same nodes and the same parameter file as launch/{sim,robot,replay}.launch.py. Every section of the file is
checked before anything starts (unknown node, unknown key or wrong type: exit 2 naming it). The nodes share a
multi-threaded executor. `--record DIR` also records the stack's topics to an MCAP bag.
`more-stack sim --instruction TEXT --json` runs simulated episodes with the demo checkpoint (or --checkpoint) and
prints JSON with success, steps, task and mean_step_latency_ms.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from more_bringup.stacks import CONFIGURED, POLICY, RECORDER, STACKS, WORLD, config_file

SIM = WORLD.name
# Nodes whose resources belong to the thread that created them (the simulator's EGL/OSMesa rendering context):
# built, spun (single-threaded) and destroyed on one thread of their own instead of the shared executor.
THREAD_BOUND = frozenset({WORLD.module})
MODULE_NODE_NAMES = {spec.module: spec.name for stack in STACKS.values() for spec in stack} | {
    RECORDER.module: RECORDER.name
}


def node_name(module: ModuleType) -> str:
    return MODULE_NODE_NAMES[module.__name__]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="more-stack",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("mode", choices=CONFIGURED, help="which stack to start")
    p.add_argument("--params", default="", help="ROS 2 parameter file (default launch/config/<mode>.yaml)")
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


def _node_class(module: ModuleType) -> type:
    from rclpy.node import Node

    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Node) and obj is not Node and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise TypeError(f"{module.__name__} must define exactly one Node class, found {[c.__name__ for c in found]}")
    return found[0]


def load_modules(mode: str, record: bool) -> list[ModuleType]:
    from more_common.errors import ConfigurationError

    modules = []
    for name in (*(spec.module for spec in STACKS[mode]), *((RECORDER.module,) if record else ())):
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

    path = Path(args.params) if args.params else config_file(args.mode)
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
        overrides.append(("bag_player", "bag", str(Path(args.bag).resolve())))
    if args.record is not None:
        overrides.append(("bag_recorder", "path", str(Path(args.record).resolve())))
    for node, param, value in overrides:
        sections.setdefault(node, {})[param] = value
    specs = {node_name(m): getattr(m, "PARAMS", None) for m in modules}
    recorder = importlib.import_module(RECORDER.module)
    specs.setdefault(RECORDER.name, recorder.PARAMS)  # a file may configure recording for --record
    try:
        validate_params(sections, specs)  # raises naming node.param
    except ConfigurationError as err:
        raise ConfigurationError(f"{path}{' with the command-line overrides' if overrides else ''}: {err}") from err
    if args.record is None:
        sections.pop(RECORDER.name, None)
    return sections


def write_params_file(sections: dict[str, dict[str, Any]], directory: str) -> Path:
    import yaml

    path = Path(directory) / "more_stack_params.yaml"
    path.write_text(yaml.safe_dump({node: {"ros__parameters": values} for node, values in sections.items()}))
    return path


class Monitor:
    """What the runner watches (a plain node in the stack): commands, policy status and episode status."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.qos import qos_profile_sensor_data

        from more_msgs.msg import EpisodeStatus, PolicyStatus, QuadrupedCommand
        from more_ros import names
        from more_ros.qos import COMMAND_QOS, STATUS_QOS

        self.node = rclpy.create_node("more_stack_monitor")
        self.latencies_ms: list[float] = []
        self.inference_ms: list[float] = []
        self.commands = 0
        self.decided = 0
        self.faults: dict[str, int] = {}
        self.episodes: dict[int, dict[str, Any]] = {}
        self.current: dict[str, Any] = {}
        self.node.create_subscription(QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS)
        self.node.create_subscription(PolicyStatus, names.POLICY_STATUS, self._on_status, STATUS_QOS)
        # Best effort matches the simulator whether it publishes reliably or not.
        self.node.create_subscription(EpisodeStatus, names.SIM_EPISODE, self._on_episode, qos_profile_sensor_data)

    def _on_command(self, msg: Any) -> None:
        self.commands += 1
        if msg.bins[0] >= 0:
            self.decided += 1
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            if stamp:
                self.latencies_ms.append((self.node.get_clock().now().nanoseconds - stamp) / 1e6)

    def _on_status(self, msg: Any) -> None:
        if msg.fault:
            key = msg.fault.split(":")[0]
            self.faults[key] = self.faults.get(key, 0) + 1
        if math.isfinite(msg.inference_ms) and msg.state in (1, 3):
            self.inference_ms.append(float(msg.inference_ms))

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
        from more_vla_policy.policy_core import percentile

        return {
            "commands": self.commands,
            "decisions": self.decided,
            "faults": self.faults,
            "mean_step_latency_ms": mean(self.latencies_ms),
            "step_latency_ms_p50": percentile(self.latencies_ms, 50) if self.latencies_ms else None,
            "step_latency_ms_p99": percentile(self.latencies_ms, 99) if self.latencies_ms else None,
            "mean_inference_ms": mean(self.inference_ms),
        }


class OwnThread:
    """A node built, spun by a single-threaded executor and destroyed on one thread of its own."""

    def __init__(self, cls: type, timeout: float = 120.0) -> None:
        self.node: Any = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(cls,), name=f"{cls.__name__}_thread", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{cls.__name__} did not start within {timeout} s")
        if self.error is not None:
            raise self.error

    def _main(self, cls: type) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        try:
            self.node = cls()
        except BaseException as err:  # handed to the constructing thread, which re-raises it
            self.error = err
            self._ready.set()
            return
        executor = SingleThreadedExecutor()
        executor.add_node(self.node)
        self._ready.set()
        try:
            while not self._stop.is_set() and rclpy.ok():
                executor.spin_once(timeout_sec=0.05)
        except Exception as err:  # reported by the runner's loop
            self.error = err
        finally:
            executor.remove_node(self.node)
            self.node.destroy_node()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from more_common.errors import ConfigurationError
    from more_ros.params import unknown_overrides

    modules = load_modules(args.mode, args.record is not None)
    sections = effective_params(args, modules)
    timeout = args.timeout or (300.0 if args.mode == "sim" else math.inf)
    nodes: list[Any] = []  # spun by the shared executor
    owned: list[OwnThread] = []  # spun on their own threads
    result: dict[str, Any] = {"mode": args.mode}
    with tempfile.TemporaryDirectory(prefix="more-stack-") as tmp:
        params_file = write_params_file(sections, tmp)
        rclpy.init(args=["more-stack", "--ros-args", "--params-file", str(params_file)])
        try:
            all_nodes = []
            for module in modules:
                if module.__name__ in THREAD_BOUND:
                    owned.append(OwnThread(_node_class(module)))
                    node = owned[-1].node
                else:
                    node = _node_class(module)()
                    nodes.append(node)
                all_nodes.append(node)
                unknown = unknown_overrides(node, getattr(module, "PARAMS", None))  # spec, else what it declared
                if unknown:
                    raise ConfigurationError(f"unknown parameter(s) for node {node.get_name()!r}: {unknown}")
            monitor = Monitor()
            executor = MultiThreadedExecutor(num_threads=max(4, len(nodes) + 2))
            for node in [*nodes, monitor.node]:
                executor.add_node(node)
            by_name = {n.get_name(): n for n in all_nodes}
            start = time.monotonic()
            try:
                _spin(args, executor, monitor, by_name, owned, timeout)
            except (KeyboardInterrupt, ExternalShutdownException):
                result["interrupted"] = True
            except Exception as err:  # a node crashed: report it (with its traceback) and shut down cleanly
                traceback.print_exc()
                result["error"] = f"{type(err).__name__}: {err}"
            result["seconds"] = round(time.monotonic() - start, 3)
            result.update(monitor.summary())
            result.update(_mode_result(args, by_name, monitor, sections))
            monitor.node.destroy_node()
        finally:
            for own in reversed(owned):
                own.stop()
            for node in reversed(nodes):
                node.destroy_node()
            if rclpy.ok():
                rclpy.shutdown()
    return result


def _spin(
    args: argparse.Namespace, executor: Any, monitor: Monitor, by_name: dict, owned: list, timeout: float
) -> None:
    """Spin until the mode's end condition (sim: episodes done; replay: bag played), the timeout or Ctrl-C."""
    start = time.monotonic()
    player_done_at = None
    while time.monotonic() - start < timeout:
        executor.spin_once(timeout_sec=0.1)
        for own in owned:
            if own.error is not None:
                raise own.error
        if args.mode == "sim" and len(monitor.episodes) >= args.episodes:
            return
        player = by_name.get("bag_player")
        if player is not None and player.done.is_set():
            player_done_at = player_done_at or time.monotonic()
            if time.monotonic() - player_done_at > 1.5:  # let the last decisions through
                return


def _mode_result(args: argparse.Namespace, nodes: dict[str, Any], monitor: Monitor, sections: dict) -> dict:
    from more_vla_policy.checkpoint_path import resolve_checkpoint

    out: dict[str, Any] = {}
    if POLICY.name in nodes:
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
                "completed": len(episodes) >= args.episodes,
            }
        )
    if "bag_player" in nodes:
        out["images_played"] = nodes["bag_player"].images_published
    if "bag_recorder" in nodes:
        out["record"] = {"path": str(nodes["bag_recorder"].writer.path), "messages": nodes["bag_recorder"].counts}
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from more_common.errors import ConfigurationError

    try:
        result = run(args)
    except ConfigurationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else _summary(result))
    if "error" in result:
        return 1
    if args.mode == "sim":
        return 0 if result.get("completed") else 1
    return 0


def _summary(result: dict[str, Any]) -> str:
    keys = ("mode", "success", "steps", "task", "decisions", "commands", "mean_step_latency_ms", "faults", "record")
    return "\n".join(f"{k}: {result[k]}" for k in keys if k in result)


if __name__ == "__main__":
    raise SystemExit(main())
