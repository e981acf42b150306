"""more-teleop and episode_control as OS processes over real DDS: keys on stdin (a pipe, as a terminal would send
them) and Joy messages become the 12-dim teleop command; episode keys and the Go2 remote's combos start, label and
discard episodes through episode_control; refusals and bad parameters are reported by name."""

import math
import os
import subprocess
import sys
import tempfile

import pytest

from more_common.action_contract import GAITS
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros


class TeleopProcess:
    """`python -m more_teleop.teleop_node` with keys written to its stdin."""

    def __init__(self, *params: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="more_teleop_", suffix=".log", delete=False)  # noqa: SIM115
        argv = [sys.executable, "-m", "more_teleop.teleop_node", "--ros-args"]
        for p in params:
            argv += ["-p", p]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT, env=os.environ.copy()
        )

    def keys(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def gait_of(m):
    return next(name for name, g in GAITS.items() if (m.gait_phase, m.gait_offset, m.gait_bound) == g)


def test_keyboard_joystick_and_episode_keys_over_dds():
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Joy
    from std_msgs.msg import String
    from std_srvs.srv import SetBool, Trigger

    from more_msgs.msg import EpisodeStatus, QuadrupedCommand
    from more_ros.qos import COMMAND_QOS, LATCHED_QOS, STATUS_QOS

    episodes = NodeProcess("more_teleop.episode_node", {"task": "crawl", "status_rate_hz": 10.0})
    teleop = TeleopProcess("rate_hz:=10.0")
    probe = Probe("teleop_probe")
    try:
        cmds = probe.listen(QuadrupedCommand, names.TELEOP_COMMAND, COMMAND_QOS, stamp=True)
        statuses = probe.listen(EpisodeStatus, names.EPISODE_STATUS, STATUS_QOS)
        diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        # the keyboard has control from the start: the stand command at rate_hz
        assert probe.spin_until(lambda: len(cmds) >= 3, 30), teleop.output()[-2000:]
        m = cmds[-1][1]
        assert (m.vx, m.vy, m.wz, m.terminate, gait_of(m), list(m.bins)) == (0.0, 0.0, 0.0, False, "trot", [-1] * 12)
        span = cmds[-1][0] - cmds[-3][0]
        assert 0.1 <= span <= 0.6, f"two periods at 10 Hz took {span:.3f} s"

        teleop.keys("wwwaqq3rt")
        assert probe.spin_until(lambda: math.isclose(cmds[-1][1].pitch, 0.2, abs_tol=1e-6), 10), teleop.output()
        m = cmds[-1][1]
        assert math.isclose(m.vx, 0.3, abs_tol=1e-6) and math.isclose(m.vy, 0.1, abs_tol=1e-6)
        assert math.isclose(m.wz, 0.4, abs_tol=1e-6) and gait_of(m) == "bound"
        assert math.isclose(m.body_height, 0.1, abs_tol=1e-6) and math.isclose(m.step_frequency, 3.0)
        teleop.keys("x")
        assert probe.spin_until(lambda: cmds[-1][1].terminate, 10)
        assert cmds[-1][1].vx == 0.0

        # episode keys -> episode_control's services: refused without an instruction, then start / success
        # (pressed again while the service is not yet discovered, as an operator would)
        assert probe.spin_until(lambda: "no instruction" in teleop.output(), 30, lambda: teleop.keys("b"), every=1.0), (
            teleop.output()[-2000:] + episodes.output()[-2000:]
        )
        pub = probe.node.create_publisher(String, names.INSTRUCTION, LATCHED_QOS)
        pub.publish(String(data="crawl under the bar"))
        heard = lambda: any(  # noqa: E731  episode_control's diagnostics show the instruction it will use
            kv.key == "instruction" and kv.value == "crawl under the bar"
            for array in diags
            for status in array.status
            for kv in status.values
        )
        assert probe.spin_until(heard, 20), episodes.output()[-2000:]
        teleop.keys("b")
        assert probe.spin_until(lambda: statuses and not statuses[-1].terminated, 10), teleop.output()[-2000:]
        assert (statuses[-1].task, statuses[-1].instruction, statuses[-1].episode) == (
            "crawl",
            "crawl under the bar",
            0,
        )
        teleop.keys("w")
        probe.spin_for(0.5)
        teleop.keys("y")
        assert probe.spin_until(lambda: statuses[-1].terminated, 10)
        final = statuses[-1]
        assert final.success and final.reward == 1.0 and final.episode == 0 and final.step == 0  # no /more/command
        assert probe.spin_until(lambda: "episode success: episode 0 ended" in teleop.output(), 10)
        # labelling leaves the robot standing, terminate cleared (it must not end the next episode at once)
        assert probe.spin_until(lambda: not cmds[-1][1].terminate and cmds[-1][1].vx == 0.0, 5)
        # a stop while idle is refused with the reason, through the service itself
        r = probe.call(SetBool, names.EPISODE_STOP, data=False)
        assert not r.success and "no episode is being recorded" in r.message
        r = probe.call(Trigger, names.EPISODE_START)
        assert r.success and "episode 1 started" in r.message
        r = probe.call(Trigger, names.EPISODE_DISCARD)
        assert r.success and "discarded" in r.message
        assert not statuses[-1].terminated and statuses[-1].episode == 1  # a discarded episode has no final status

        # m: the keyboard lets go; the node falls silent
        teleop.keys("m")
        probe.spin_for(0.5)
        n = len(cmds)
        probe.spin_for(0.6)
        assert len(cmds) == n, "still publishing after the keyboard released control"

        # the joystick: commands only while LB (button 9) is held; sticks -> velocities
        joy_pub = probe.node.create_publisher(Joy, names.JOY, COMMAND_QOS)

        def joy(lb, ly=0.0, lx=0.0, rx=0.0, buttons=()):
            msg = Joy()
            msg.axes = [lx, ly, rx, 0.0, 1.0, 1.0]
            msg.buttons = [0] * 15
            msg.buttons[9] = 1 if lb else 0
            for b in buttons:
                msg.buttons[b] = 1
            return lambda: joy_pub.publish(msg)

        probe.spin_for(0.8, joy(True, ly=0.5, lx=-1.0, rx=0.25, buttons=(3,)), every=0.05)  # + Y: pronk
        m = cmds[-1][1]
        assert len(cmds) > n and math.isclose(m.vx, 0.5, abs_tol=1e-6) and math.isclose(m.vy, -0.6, abs_tol=1e-6)
        assert math.isclose(m.wz, 0.25, abs_tol=1e-6) and gait_of(m) == "pronk" and not m.terminate
        probe.spin_for(0.5, joy(False, ly=0.5), every=0.05)
        n = len(cmds)
        probe.spin_for(0.6, joy(False, ly=0.5), every=0.05)
        assert len(cmds) == n, "published with the deadman released"
        # a Joy message the mapping cannot read: rejected by name, no motion
        short = Joy()
        short.axes, short.buttons = [0.0, 1.0], [0] * 15
        short.buttons[9] = 1
        probe.spin_for(0.5, lambda: joy_pub.publish(short), every=0.05)
        assert len(cmds) == n
        assert "joy message has 2 axes; axis_wz=2 needs 3" in teleop.output()
    finally:
        probe.close()
        rc_teleop, rc_episodes = teleop.stop(), episodes.stop()
    out = teleop.output()
    assert rc_teleop == 0 and "Traceback" not in out, out[-3000:]
    assert rc_episodes == 0 and "Traceback" not in episodes.output(), episodes.output()[-3000:]


def test_go2_remote_combos_label_episodes():
    from go2_bridge.remote import encode_remote, keys_of
    from more_msgs.msg import EpisodeStatus
    from more_ros.qos import SENSOR_QOS, STATUS_QOS
    from unitree_go.msg import LowState

    episodes = NodeProcess(
        "more_teleop.episode_node",
        {"instruction": "go to the red ball", "remote_enabled": True, "remote_hold_frames": 5},
    )
    probe = Probe("remote_probe")
    try:
        statuses = probe.listen(EpisodeStatus, names.EPISODE_STATUS, STATUS_QOS)
        pub = probe.node.create_publisher(LowState, names.LOWSTATE, SENSOR_QOS)

        def hold(*buttons):
            msg = LowState()
            msg.wireless_remote = list(encode_remote(keys=keys_of(*buttons)))
            return lambda: pub.publish(msg)

        assert probe.spin_until(lambda: probe.node.count_subscribers(names.LOWSTATE) > 0, 30), episodes.output()
        probe.spin_for(0.3)
        assert probe.spin_until(lambda: bool(statuses), 10, hold("R2", "Y"), every=0.01), episodes.output()[-2000:]
        assert statuses[-1].episode == 0 and not statuses[-1].terminated
        probe.spin_for(0.3, hold(), every=0.01)
        probe.spin_for(0.5, hold("R2", "B", "L1"), every=0.01)  # not exactly the combo: nothing happens
        assert not statuses[-1].terminated
        assert probe.spin_until(lambda: statuses[-1].terminated, 10, hold("R2", "B"), every=0.01)
        assert not statuses[-1].success and statuses[-1].episode == 0
    finally:
        probe.close()
        rc = episodes.stop()
    assert rc == 0 and "Traceback" not in episodes.output(), episodes.output()[-3000:]


def test_bad_parameters_and_help():
    cases = [
        ("more_teleop.teleop_node", "gait:=gallop", "'gait'"),
        ("more_teleop.teleop_node", "height_presets:=[0.5]", "height_presets"),
        ("more_teleop.teleop_node", "joy.scale:=2.0", "scale must lie in (0, 1]"),
        ("more_teleop.episode_node", "task:=' '", "'task'"),
        ("more_teleop.episode_node", "remote_hold:=3", "['remote_hold']"),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, "--ros-args", "-p", param],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module, param, _ in cases
    ]
    for (_, param, needle), proc in zip(cases, procs, strict=True):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (param, err)
        assert needle in err and "Traceback" not in err, (param, err)
    help_text = subprocess.run(
        [sys.executable, "-m", "more_teleop.teleop_node", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for needle in ("usage: more-teleop", "episode: stop, label success", "LB", "finetune_teleop.yaml", "--to-dataset"):
        assert needle in help_text, needle


def test_a_terminal_gets_keys_without_enter_and_is_restored():
    """On a terminal (a pty here) keys act at once (cbreak mode), and the terminal's mode is restored on exit."""
    import pty
    import termios

    from more_msgs.msg import QuadrupedCommand
    from more_ros.qos import COMMAND_QOS

    master, slave = pty.openpty()
    canonical = termios.tcgetattr(slave)[3] & termios.ICANON
    assert canonical  # a fresh pty is line-buffered: without cbreak mode no key would arrive before Enter
    log = tempfile.NamedTemporaryFile(prefix="more_teleop_tty_", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "more_teleop.teleop_node", "--ros-args", "-p", "rate_hz:=10.0"],
        stdin=slave,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    probe = Probe("teleop_tty_probe")
    try:
        cmds = probe.listen(QuadrupedCommand, names.TELEOP_COMMAND, COMMAND_QOS)
        assert probe.spin_until(lambda: len(cmds) >= 2, 30)
        os.write(master, b"wwq")  # no newline
        assert probe.spin_until(lambda: math.isclose(cmds[-1].wz, 0.2, abs_tol=1e-6), 10)
        assert math.isclose(cmds[-1].vx, 0.2, abs_tol=1e-6)
        assert not termios.tcgetattr(slave)[3] & termios.ICANON  # cbreak while running
    finally:
        probe.close()
        proc.send_signal(2)
        rc = proc.wait(10)
    assert rc == 0
    assert termios.tcgetattr(slave)[3] & termios.ICANON, "the terminal was left in cbreak mode"
    os.close(master)
    os.close(slave)
