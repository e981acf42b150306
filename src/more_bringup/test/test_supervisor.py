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
