"""The nodes of a stack as OS processes, supervised (pure Python: no rclpy).

[Contract]
- `start(spec, params_file)` runs `python -m <spec.module> --ros-args --params-file FILE`, as `ros2 launch`
  runs a console script: each node its own process, its own GIL, its own cores. Output goes to this process's
  stderr (so `more-stack --json` keeps stdout for the result).
- A child is told SIGINT when this process dies in any way (Linux PR_SET_PDEATHSIG), so a killed supervisor
  never leaves a bridge running without its controller: the bridge's SIGINT handler damps.
- `stop()` sends SIGINT to every running child (each node's clean exit; the bridge damps first), waits, and
  kills what is still running after the timeout. Before the kill it asks each late child for its threads' Python
  stacks (SIGUSR1, which every node answers on stderr: more_ros.node_main) and names it, so a hang at shutdown
  leaves in the log where it hung. It returns each child's exit status (-9 for a killed one). A Ctrl-C or SIGTERM that
  arrives meanwhile (people press Ctrl-C twice) is noted in `interrupted_while_stopping`, not raised: raised, it
  would abandon the wait with a traceback while the bridge is still damping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from more_bringup.stacks import NodeSpec
from more_ros.node_main import STACK_DUMP_SIGNAL
from more_ros.process import die_with_parent

STACK_DUMP_WAIT_S = 1.0  # a late child's time to write its stacks before it is killed


@dataclass
class Child:
    spec: NodeSpec
    process: subprocess.Popen

    @property
    def returncode(self) -> int | None:
        return self.process.poll()


class NodeProcesses:
    def __init__(self, output: TextIO | None = None) -> None:
        self.children: list[Child] = []
        self._output = output if output is not None else sys.stderr
        self.interrupted_while_stopping = False

    def start(self, spec: NodeSpec, params_file: Path, extra_ros_args: Sequence[str] = ()) -> Child:
        argv = [sys.executable, "-m", spec.module, "--ros-args", "--params-file", str(params_file), *extra_ros_args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(argv, stdout=self._output, stderr=self._output, env=env, preexec_fn=die_with_parent)
        child = Child(spec, process)
        self.children.append(child)
        return child

    def exited(self) -> list[Child]:
        """Children that have ended (in start order)."""
        return [c for c in self.children if c.returncode is not None]

    def by_name(self, name: str) -> Child | None:
        return next((c for c in self.children if c.spec.name == name), None)

    def stop(self, timeout: float = 20.0) -> dict[str, int]:
        """SIGINT to every running child, wait up to `timeout` s, then SIGKILL; {node name: exit status}."""
        with self._interrupts_noted(timeout):
            for child in reversed(self.children):
                if child.returncode is None:
                    child.process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + timeout
            late = []
            for child in self.children:
                try:
                    child.process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    late.append(child)
            self._kill_late(late, timeout)
        return {c.spec.name: c.process.returncode for c in self.children}

    def _kill_late(self, late: list[Child], timeout: float) -> None:
        """Ask each late child for its stacks, give it STACK_DUMP_WAIT_S to write them, then kill it."""
        for child in late:
            if child.returncode is None:
                child.process.send_signal(STACK_DUMP_SIGNAL)
        if late:
            time.sleep(STACK_DUMP_WAIT_S)
        for child in late:
            if child.returncode is None:
                print(
                    f"node {child.spec.name} (pid {child.process.pid}) had not exited {timeout:.0f} s after SIGINT: "
                    "killed (its threads' Python stacks are above)",
                    file=self._output,
                    flush=True,
                )
                child.process.kill()
            child.process.wait()

    @contextlib.contextmanager
    def _interrupts_noted(self, timeout: float) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # only the main thread can set handlers
            yield
            return

        def note(signum: int, frame: Any) -> None:
            if not self.interrupted_while_stopping:
                print(f"stopping the nodes: waiting up to {timeout:.0f} s for them to exit", file=self._output)
            self.interrupted_while_stopping = True

        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, note)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def __enter__(self) -> NodeProcesses:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
