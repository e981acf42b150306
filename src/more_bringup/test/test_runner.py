"""more-stack: the shipped parameter files validate against the nodes' specs; bad files and overrides exit 2
naming the key; `more-stack replay --record` runs the policy over a bag in one process and the recorded bag
replays offline (more-replay) to exact agreement."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from more_bringup.runner import load_modules, node_name
from more_ros.params import load_params_file, validate_params
from more_vla_policy.checkpoint_path import repo_root
from more_vla_policy.replay.testing import BagBuilder

CONFIG = repo_root() / "launch" / "config"


MODES = ["replay", "robot", "sim", "sim_go2"]


@pytest.mark.parametrize("mode", MODES)
def test_shipped_parameter_files_validate(mode):
    modules = load_modules(mode, record=True)
    specs = {node_name(m): getattr(m, "PARAMS", None) for m in modules}
    sections = load_params_file(CONFIG / f"{mode}.yaml")
    assert set(sections) <= set(specs), f"{mode}.yaml configures nodes the stack does not start"
    out = validate_params(sections, specs)
    assert set(out) == set(specs)


def run_stack(*argv, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "more_bringup.runner", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_files_and_overrides_exit_2_naming_the_key(tmp_path):
    bad_type = tmp_path / "t.yaml"
    bad_type.write_text("policy_node:\n  ros__parameters:\n    rate_hz: 5\n")
    unknown = tmp_path / "u.yaml"
    unknown.write_text("policy_node:\n  ros__parameters:\n    rate: 5.0\n")
    stranger = tmp_path / "s.yaml"
    stranger.write_text("camera_node:\n  ros__parameters:\n    fps: 5.0\n")
    kinematic = tmp_path / "k.yaml"  # the go2 stack's nodes, the simulator left kinematic
    kinematic.write_text((CONFIG / "sim_go2.yaml").read_text().replace("embodiment: go2", "embodiment: kinematic"))
    cases = [
        (
            ["replay", "--params", bad_type],
            "parameter policy_node.rate_hz must be of type double (like 5.0), got integer",
        ),
        (["replay", "--params", unknown], "unknown parameter(s) ['policy_node.rate']"),
        (["replay", "--params", stranger], "parameter sections for unknown node(s) ['camera_node']"),
        (["robot", "--set", "go2_bridge.rate_hz=fast"], "go2_bridge.rate_hz must be of type double"),
        (["robot", "--set", "camera_node"], "--set 'camera_node' must look like node.param=value"),
        (["robot", "--backend", "sport", "--set", "go2_sport.move_rate_hz=fast"], "go2_sport.move_rate_hz must be of"),
        (["robot", "--backend", "sport", "--set", "go2_sport.mvoe_rate_hz=5.0"], "['go2_sport.mvoe_rate_hz']"),
        (["sim", "--backend", "sport"], "--backend applies to the robot stack only, not 'sim'"),
        (["replay", "--params", tmp_path / "missing.yaml"], "cannot read parameter file"),
        (["robot", "--embodiment", "go2"], "--embodiment go2 applies to the sim stack only"),
        (["sim", "--embodiment", "go2", "--time-scale", "0"], "--time-scale must be auto or a number in (0, 1]"),
        (["sim", "--embodiment", "go2", "--time-scale", "fast"], "--time-scale must be auto or a number in (0, 1]"),
        (["sim", "--embodiment", "go2", "--params", kinematic], "more_sim.embodiment must be go2"),
        # what the command line names is checked before any node starts (these once started the stack, then failed)
        (["sim", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["sim", "--timeout", "nan"], "--timeout must be a finite number of seconds >= 0"),
        (["sim", "--checkpoint", tmp_path], "is not a checkpoint directory (no more_checkpoint.json)"),
        (["replay"], "the replay stack needs a bag: --bag BAG"),
        (["replay", "--bag", tmp_path / "no_bag"], "no_bag' does not exist"),
        (["sim", "--record", tmp_path], "exists already: the recorder writes a new bag"),
        (["sim", "--video", bad_type / "videos"], "is a file, not a directory"),
    ]
    procs = [  # all at once: each is a short-lived process that fails before starting ROS
        (subprocess.Popen([sys.executable, "-m", "more_bringup.runner", *map(str, argv)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True), argv, needle)
        for argv, needle in cases
    ]  # fmt: skip
    for proc, argv, needle in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (argv, err[-2000:])
        assert needle in err and "Traceback" not in err, (argv, err[-2000:])


@pytest.mark.ros
def test_replay_stack_records_a_bag_that_replays_to_exact_agreement(tmp_path, capsys):
    from more_model.testing import make_tiny_checkpoint
    from more_vla_policy.replay import cli

    checkpoint = make_tiny_checkpoint(tmp_path / "ckpt", seed=4)
    source = tmp_path / "source"
    b = BagBuilder(source)
    b.instruction(0, "go through the gate")
    rng = np.random.default_rng(0)
    for i in range(16):  # 1.6 s of a 10 Hz camera (realsense-ros topic: the player remaps it)
        b.image(
            5_000_000 + i * 100_000_000,
            rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            topic="/camera/camera/color/image_raw",
        )
    b.close()
    out = tmp_path / "recorded"
    proc = run_stack(
        "replay",
        "--bag",
        source,
        "--checkpoint",
        checkpoint,
        "--record",
        out,
        "--json",
        "--set",
        "policy_node.torch_threads=1",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["images_played"] == 16 and result["decisions"] >= 3
    # every decision is in the bag (a stop the policy sends while the stack shuts down may come after the recorder)
    assert result["decisions"] <= result["record"]["messages"]["/more/command"] <= result["commands"]
    assert result["record"]["messages"]["/camera/camera/color/image_raw"] == 16
    assert result["mean_step_latency_ms"] > 0 and result["mean_inference_ms"] > 0

    assert cli.main([str(out), "--checkpoint", str(checkpoint), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["with_recorded_command"] == result["decisions"]
    agr = replayed["agreement"]
    assert agr["exact_bin"] == 1.0 and agr["all_dims_exact"] == 1.0
    assert max(d["mae"] for d in agr["per_dim"].values()) < 1e-6
    lat = replayed["latency_ms"]["recorded_camera_to_command"]
    assert lat["count"] == result["decisions"] and lat["p50"] > 0


def test_rviz_config_shows_the_monitoring_topics():
    import yaml

    from more_ros import names
    from more_vla_policy import monitoring

    config = yaml.safe_load((repo_root() / "launch" / "more.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == names.BASE_FRAME  # markers are in the robot frame
    displays = {d["Topic"]["Value"]: d for d in manager["Displays"] if "Topic" in d}
    assert displays[names.MARKERS]["Class"] == "rviz_default_plugins/MarkerArray"
    namespaces = {m.ns for m in monitoring.command_markers(np.zeros(12), 1, "x")}
    assert set(displays[names.MARKERS]["Namespaces"]) == namespaces
    assert displays[names.ANNOTATED_IMAGE]["Class"] == "rviz_default_plugins/Image"
    assert displays[names.ANNOTATED_IMAGE]["Topic"]["Reliability Policy"] == "Best Effort"  # sensor QoS
    assert names.CAMERA_IMAGE in displays and names.SIM_ODOM in displays


@pytest.mark.ros
def test_a_node_that_dies_stops_the_stack(tmp_path):
    """Each node is its own process; when one ends, the runner stops the others and exits 1 naming it."""
    from more_model.testing import make_tiny_checkpoint

    checkpoint = make_tiny_checkpoint(tmp_path / "ckpt", seed=1)
    proc = run_stack(
        "robot",
        "--checkpoint",
        checkpoint,
        "--json",
        "--set",
        "camera_node.source=synthetic",
        "--set",
        "policy_node.torch_threads=1",
        "--set",
        "wtw_controller.run_dir=/nonexistent/run",  # the controller refuses to start: exit status 2
        timeout=240,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["error"].startswith("node wtw_controller (wtw_controller_node) exited with status 2")
    assert result["exit_status"]["wtw_controller"] == 2
    # the others were stopped by the runner (SIGINT), cleanly, and none is left running
    assert {k: v for k, v in result["exit_status"].items() if k != "wtw_controller"} == {
        "camera_node": 0,
        "policy_node": 0,
        "command_mux": 0,
        "episode_control": 0,
        "go2_bridge": 0,
    }
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: node wtw_controller")


@pytest.mark.ros
@pytest.mark.slow
def test_robot_stack_with_the_sport_backend_drives_a_simulated_go2(tmp_path):
    """`more-stack robot --backend sport`: camera (synthetic) -> policy (disabled: stop commands) -> go2_sport ->
    a simulated Go2 in sport mode (go2_sport_sim). Move requests reach it and are answered; nothing is ever
    published on /lowcmd or to the motion switcher, and no controller or bridge runs.

    The stack is stopped with SIGINT (as Ctrl-C), which must end it cleanly, once the probe heard three moves and
    three answers, not after a fixed time: on 2 busy cores start-up and discovery took most of a short --timeout."""
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from more_model.testing import make_tiny_checkpoint
    from more_ros import names
    from more_ros.qos import STATUS_QOS
    from more_ros.testing import NodeProcess, Probe
    from unitree_api.msg import Request, Response
    from unitree_go.msg import LowCmd

    checkpoint = make_tiny_checkpoint(tmp_path / "ckpt", seed=2)
    sim = NodeProcess("go2_sim.sport_sim_node")
    probe = Probe("robot_sport_stack_test")
    best_effort = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.BEST_EFFORT)
    requests = probe.listen(Request, names.SPORT_REQUEST, STATUS_QOS)
    answers = probe.listen(Response, names.SPORT_RESPONSE, STATUS_QOS)
    lowcmds = probe.listen(LowCmd, names.LOWCMD, best_effort)
    switcher = probe.listen(Request, names.MOTION_SWITCHER_REQUEST, best_effort)
    argv = ["robot", "--backend", "sport", "--checkpoint", checkpoint, "--json", "--timeout", "240",
            "--set", "camera_node.source=synthetic", "--set", "policy_node.torch_threads=1"]  # fmt: skip
    stack = subprocess.Popen(
        [sys.executable, "-m", "more_bringup.runner", *map(str, argv)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def moves_answered() -> int:
        return sum(a.header.identity.api_id == 1008 and a.header.status.code == 0 for a in answers)

    def moves_heard() -> int:  # the probe discovers each publisher on its own: wait for both directions
        return min(moves_answered(), sum(r.header.identity.api_id == 1008 for r in requests))

    try:
        probe.spin_until(lambda: stack.poll() is not None or moves_heard() >= 3, 240.0)
        if stack.poll() is None:
            stack.send_signal(signal.SIGINT)
        probe.spin_until(lambda: stack.poll() is not None, 60.0)
        if stack.poll() is None:  # what it was doing is in its stderr
            stack.kill()
            pytest.fail(f"more-stack still ran 60 s after SIGINT; stderr: {stack.communicate(timeout=30)[1][-3000:]}")
        out, err = stack.communicate(timeout=30)
        probe.spin_for(0.5)
    finally:
        if stack.poll() is None:
            stack.kill()
        probe.close()
        assert sim.stop() == 0 and "Traceback" not in sim.output(), sim.output()
    assert stack.returncode == 0 and "Traceback" not in err, err[-3000:]
    result = json.loads(out)
    assert result["backend"] == "sport" and result["interrupted"] is True
    assert result["exit_status"] == {
        "camera_node": 0, "policy_node": 0, "command_mux": 0, "episode_control": 0, "go2_sport": 0,
    }, err[-6000:]  # a node killed late (-9) left its threads' stacks in err  # fmt: skip
    moves = [r for r in requests if r.header.identity.api_id == 1008]
    assert moves and all(r.parameter == '{"x":0.0,"y":0.0,"z":0.0}' for r in moves)  # the disabled policy's stop
    assert requests[-1].header.identity.api_id == 1003  # StopMove when the stack was stopped
    assert moves_answered() >= 3
    assert lowcmds == [] and switcher == []


def test_the_data_source_waits_until_the_monitor_hears_the_command(monkeypatch):
    # an episode that ends in its first decisions must not be over before the runner's monitor receives commands
    # (CI saw a crawl episode reported with no decisions and no latency: matched is not yet receiving)
    from more_bringup import runner

    class Monitor:
        commands = 0

    class Executor:
        def __init__(self, monitor: Monitor, arrives_after: int):
            self.monitor, self.arrives_after, self.spins = monitor, arrives_after, 0

        def spin_once(self, timeout_sec: float) -> None:
            self.spins += 1
            self.monitor.commands = int(self.spins >= self.arrives_after)

    class Processes:
        def exited(self) -> list:
            return []

    executor = Executor(Monitor(), arrives_after=3)
    runner._wait_for_first_command(executor, executor.monitor, Processes())
    assert executor.spins == 3  # spun until the first command arrived, then returned
    monkeypatch.setattr(runner, "COMMAND_MATCH_TIMEOUT_S", 0.05)
    silent = Executor(Monitor(), arrives_after=10**9)
    with pytest.raises(runner.StackError, match="this runner received no command within 0 s"):
        runner._wait_for_first_command(silent, silent.monitor, Processes())


def test_ctrl_c_before_any_node_started_is_one_line_and_exit_130(monkeypatch, capsys):
    # Ctrl-C while more-stack still loads the node modules (seconds: torch, transformers): no traceback
    from more_bringup import runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "load_modules", interrupted)
    assert runner.main(["replay", "--bag", "nowhere"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and err == "more-stack: interrupted; no node of the stack is running\n"


def test_a_ctrl_c_during_a_destructor_still_stops_the_stack(monkeypatch):
    # The runner's handler notes SIGINT and its loops raise: a KeyboardInterrupt raised inside a destructor (or a
    # callback) would be printed as "Exception ignored" and lost, and the stack would drive on.
    import gc
    import os
    import time

    from more_bringup import runner

    class Monitor:
        commands = 0

    class Executor:
        spins = 0

        def spin_once(self, timeout_sec: float) -> None:
            self.spins += 1

    class Processes:
        def exited(self) -> list:
            return []

    class SignalledWhileCollected:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, inside the destructor

    previous = signal.signal(signal.SIGINT, runner.STOP_SIGNALS)
    runner.STOP_SIGNALS.received = None
    try:
        obj = SignalledWhileCollected()
        del obj
        gc.collect()
        assert runner.STOP_SIGNALS.received == signal.SIGINT
        executor = Executor()
        with pytest.raises(runner.StopRequestedError, match="SIGINT"):
            runner._wait_for_first_command(executor, Monitor(), Processes())
        assert executor.spins == 0  # before the next spin, not after a timeout
    finally:
        signal.signal(signal.SIGINT, previous)
        runner.STOP_SIGNALS.received = None


def test_a_node_that_ended_of_the_same_ctrl_c_is_not_reported_as_a_failure():
    # In a terminal Ctrl-C reaches the nodes too: one may exit during the runner's spin, before its own check
    import argparse
    import time
    from types import SimpleNamespace

    from more_bringup import runner
    from more_bringup.stacks import MUX

    class Monitor:
        def __init__(self) -> None:
            self.episodes: dict = {}

        def bring_up_step(self) -> None:
            pass

    class Processes:
        ended = False

        def exited(self) -> list:
            return [SimpleNamespace(spec=MUX, returncode=0)] if self.ended else []

    processes = Processes()

    class Executor:
        def spin_once(self, timeout_sec: float) -> None:
            runner.STOP_SIGNALS(signal.SIGINT, None)  # the signal lands during the spin ...
            processes.ended = True  # ... and the mux exits of it

    runner.STOP_SIGNALS.received = None
    try:
        with pytest.raises(runner.StopRequestedError):
            runner._supervise(argparse.Namespace(mode="robot"), Executor(), Monitor(), processes, time.monotonic() + 10)
    finally:
        runner.STOP_SIGNALS.received = None
