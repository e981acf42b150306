"""NodeProcesses.stop(): a Ctrl-C (or SIGTERM) that arrives while the nodes are stopping is noted, not raised: the
wait for each node's clean exit (the bridge damping) goes on, and the handlers are restored afterwards."""

import os
import signal
import sys
import textwrap
import threading
import time

from more_bringup.stacks import NodeSpec
from more_bringup.supervisor import NodeProcesses

SLOW_TO_STOP = textwrap.dedent(
    """
    import signal, sys, time
    asked = []
    signal.signal(signal.SIGINT, lambda *_: asked.append(time.monotonic()))
    print("ready", flush=True)
    while not asked:
        time.sleep(0.01)
    time.sleep(1.0)  # a node's clean exit that takes a while (the bridge damps for a second)
    sys.exit(0)
    """
)


def test_a_second_ctrl_c_during_stop_neither_raises_nor_abandons_the_nodes(tmp_path, monkeypatch):
    (tmp_path / "slow_node.py").write_text(SLOW_TO_STOP)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    log = (tmp_path / "out.log").open("w+")
    processes = NodeProcesses(output=log)
    for name in ("bridge", "controller"):
        processes.start(NodeSpec("test", "slow_node", "slow_node", name), tmp_path / "unused.yaml")
    deadline = time.monotonic() + 60
    while log.seek(0) == 0 and log.read().count("ready") < 2:
        assert time.monotonic() < deadline, "the test nodes did not start"
        time.sleep(0.05)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, delay in ((signal.SIGINT, 0.3), (signal.SIGTERM, 0.5)):  # Ctrl-C again, then a kill
        threading.Timer(delay, os.kill, (os.getpid(), sig)).start()
    t0 = time.monotonic()
    status = processes.stop(timeout=20.0)
    took = time.monotonic() - t0
    assert status == {"bridge": 0, "controller": 0}, status  # each exited cleanly, by itself, not killed
    assert 0.9 < took < 15.0, took
    assert processes.interrupted_while_stopping
    assert {sig: signal.getsignal(sig) for sig in before} == before
    log.seek(0)
    assert log.read().count("stopping the nodes: waiting up to 20 s") == 1


def test_stop_without_an_interrupt_reports_none(tmp_path):
    processes = NodeProcesses(output=sys.stderr)
    assert processes.stop() == {} and not processes.interrupted_while_stopping


HANGS_AT_SHUTDOWN = textwrap.dedent(
    """
    import time
    from rclpy.node import Node
    from more_ros.node_main import spin_node

    class Stuck(Node):
        def __init__(self):
            super().__init__("stuck")
            self.create_timer(0.05, lambda: print("ready", flush=True))

        def destroy_node(self):
            hang_here_at_shutdown()

    def hang_here_at_shutdown():
        while True:
            time.sleep(0.1)

    raise SystemExit(spin_node(Stuck))
    """
)


def test_a_node_late_at_shutdown_leaves_its_stacks_in_the_log_and_is_killed(tmp_path, monkeypatch):
    """A node built on more_ros.node_main that hangs after SIGINT (here in destroy_node): stop() asks it for its
    stacks, names it and kills it; before that, the same signal while it runs only prints, the node goes on."""
    (tmp_path / "stuck_node.py").write_text(HANGS_AT_SHUTDOWN)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    log = (tmp_path / "out.log").open("w+")
    processes = NodeProcesses(output=log)
    child = processes.start(NodeSpec("test", "stuck_node", "stuck_node", "stuck"), tmp_path / "unused.yaml")

    def wait_for(text: str, count: int = 1) -> str:
        deadline = time.monotonic() + 60
        while log.seek(0) == 0 and log.read().count(text) < count:
            assert time.monotonic() < deadline and child.returncode is None, (text, log.seek(0), log.read())
            time.sleep(0.05)
        log.seek(0)
        return log.read()

    wait_for("ready")
    child.process.send_signal(signal.SIGUSR1)
    dumped = wait_for("Current thread")  # faulthandler's heading of the thread it was called in
    assert "spin" in dumped and "stuck_node.py" in dumped
    ready_after = dumped.count("ready") + 3
    wait_for("ready", ready_after)  # it goes on: the timer still fires
    t0 = time.monotonic()
    status = processes.stop(timeout=2.0)
    took = time.monotonic() - t0
    assert status == {"stuck": -signal.SIGKILL}, status
    assert 2.0 < took < 10.0, took
    log.seek(0)
    out = log.read()
    after_stop = out[len(dumped) :]
    assert "hang_here_at_shutdown" in after_stop and "destroy_node" in after_stop, after_stop[-3000:]
    assert after_stop.index("hang_here_at_shutdown") < after_stop.index("had not exited 2 s after SIGINT: killed")
    assert f"node stuck (pid {child.process.pid}) had not exited" in after_stop
