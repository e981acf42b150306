"""The one node skeleton every executable of the stack uses (after ros2/examples).

`run_node(make_node, description=...)` answers --help without touching ROS, then initialises rclpy, builds the
node, spins it and shuts down cleanly on Ctrl-C or an external shutdown. A node that fails to build for its
input (a parameter that does not validate, a topic name that is not valid, ROS arguments rcl cannot parse, a
QoS override rcl refuses, a path it cannot use) exits with status 2 and one clear line, not a traceback; any
other constructor error is a bug and raises. SIGUSR1 prints every thread's Python stack to stderr and the node
goes on (`faulthandler`): more-stack sends it to a node that has not exited in time after SIGINT, before it
kills it, so a hang at shutdown leaves where it hung in the log.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from more_common.cli import OneLineArgumentParser
from more_common.errors import ConfigurationError

if TYPE_CHECKING:
    from rclpy.node import Node


STACK_DUMP_SIGNAL = signal.SIGUSR1  # a node's answer: every thread's Python stack on stderr


def _register_stack_dump() -> None:
    """SIGUSR1 -> every thread's stack on stderr. A C-level handler: it prints even while the main thread is blocked
    inside rcl/DDS. Skipped where stderr has no file descriptor (a node run in a process that captured it, as a
    test does): the node runs the same, without the dump."""
    with contextlib.suppress(AttributeError, ValueError, OSError):  # io.UnsupportedOperation: fileno
        faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)


def _split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split argv into (our args, ROS args); ROS args start at --ros-args."""
    argv = list(argv)
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        return argv[:i], argv[i:]
    return argv, []


def parse_cli(
    prog: str, description: str, argv: Sequence[str] | None = None, add_arguments: Callable | None = None
) -> tuple[argparse.Namespace, list[str]]:
    """Parse the non-ROS part of argv (so --help works without ROS); return (namespace, ros_args)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, ros_args = _split_ros_args(argv)
    parser = OneLineArgumentParser(
        prog=prog,
        description=description,
        epilog="ROS arguments follow --ros-args, e.g. --ros-args -p rate_hz:=10.0 --params-file params.yaml",
    )
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args(ours), ros_args


def check_overrides(node: Node) -> None:
    """After construction: every parameter override the node got was declared (a parameter of its spec or a
    `qos_overrides.*` key of one of its publishers/subscriptions); anything else is a ConfigurationError."""
    from more_ros.params import unknown_overrides

    unknown = unknown_overrides(node)
    if unknown:
        raise ConfigurationError(f"unknown parameter(s) for node {node.get_name()!r}: {unknown}")


def _construction_input_errors() -> tuple[type[BaseException], ...]:
    """What building a node raises for its input rather than for a bug: a topic or service name that is not valid
    (a topic parameter), rcl refusing a value (a QoS override's depth < 0), a path the node cannot create or read."""
    from rclpy.exceptions import InvalidServiceNameException, InvalidTopicNameException
    from rclpy.impl.implementation_singleton import rclpy_implementation

    return (InvalidTopicNameException, InvalidServiceNameException, rclpy_implementation.RCLError, OSError)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else text[:397] + "..."


def spin_node(make_node: Callable[[], Node], ros_args: Sequence[str] = (), executor_threads: int = 1) -> int:
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    _register_stack_dump()
    try:
        rclpy.init(args=["node", *ros_args])
    except _construction_input_errors() as err:  # rcl could not parse the ROS arguments (e.g. `-p name:=`)
        print(f"error: the ROS arguments {' '.join(ros_args)!r} do not parse: {_one_line(err)}", file=sys.stderr)
        return 2
    node = executor = None
    try:
        try:
            node = make_node()
            check_overrides(node)
        except (ConfigurationError, ParameterException, *_construction_input_errors()) as err:
            if not rclpy.ok():  # a signal shut the context down under the constructor: rcl's errors say only that
                return 0
            # a bad parameter, topic name or QoS override value, or a path the node cannot use
            print(f"error: {_one_line(err)}", file=sys.stderr)
            return 2
        except Exception as err:
            if isinstance(err, RuntimeError) and "QoS override" in str(err):  # an invalid qos_overrides.* value
                print(f"error: {_one_line(err)}", file=sys.stderr)
                return 2
            if rclpy.ok():
                raise
            # Ctrl-C / SIGTERM while the node was being built: rclpy's handler shut the context down under the
            # constructor. Nothing ran yet (no motor was commanded): a clean exit, not a traceback
            return 0
        executor = MultiThreadedExecutor(executor_threads) if executor_threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except Exception:
            if rclpy.ok():
                raise
            # the context was shut down under the executor (a node's own signal handler, e.g. the bridge's
            # damping-then-exit): what the executor raises on its way out is that shutdown, not a failure
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            # its guard conditions destroyed now, while their handles are valid, not whenever the executor is
            # collected: once, when more-stack stopped its nodes, one printed "Exception ignored in
            # Executor.__del__ ... InvalidHandle" on its way out (not reproduced since). Safe after the context's
            # shutdown too (measured).
            executor.shutdown(timeout_sec=0)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def run_node(
    make_node: Callable[[], Node],
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
    executor_threads: int = 1,
) -> int:
    """Standard `main`: --help without ROS, then init, spin, clean shutdown. Returns the exit status."""
    _, ros_args = parse_cli(prog, description, argv)
    return spin_node(make_node, ros_args, executor_threads)
