"""more-teleop: drive the Go2 in the VLA's 12-dim action space (keyboard, joystick) and label recorded episodes.

The command (vx, vy, wz, one of the four trained gaits, body-height and pitch presets, terminate; the rest of the
12 dims standing) goes to /more/teleop/command at rate_hz while the operator has control: the keyboard from the
start until `m` releases it (or stdin ends), the joystick while its deadman (LB) is held. Terminate stays set
until a motion key or an episode key (start, success, failure, discard: each leaves the robot standing).
command_mux lets it override the VLA while it keeps arriving; released, the robot stands until the VLA decides
anew.

Keyboard (this terminal, one key per action):
{keys}

Joystick (sensor_msgs/Joy on /joy from `ros2 run joy game_controller_node`; indices are parameters joy.*):
{joy}

Episodes (episode_control's services /more/episode/start, /more/episode/stop [SetBool: true = success],
/more/episode/discard; with episode_control.remote_enabled the Go2 remote too: R2+Y start, R2+A success, R2+B
failure, R2+X discard). Labels go to /more/episode/status; bag_recorder records them with camera, instruction
and commands.

Data collection and fine-tuning, step by step (docs/deployment.md, section 10):
  1. the stack (command_mux and episode_control are in it), recorded:
       simulator:  more-stack sim --record bags/run1 --episodes 50 --timeout 3600 --set more_sim.reset_delay_s=5.0
       robot:      more-stack robot --params my_robot.yaml --record bags/run1   (or ros2 launch + ros2 bag record)
  2. this node in a terminal: b start, drive, x terminate, y success / n failure / c discard; m hands back to the VLA
  3. to training shards:
       more-replay bags/run1 --to-dataset data/teleop --episode-topic /more/episode/status
           --between-episodes drop --include-stops --image-size 64 96
  4. fine-tune the adapters:
       more-train --config training/configs/finetune_teleop.yaml init.init_from=CHECKPOINT 'data.train=[data/teleop]'
  5. evaluate: more-sim eval --policy runs/finetune_teleop/checkpoints/step-00000300 --tasks go_to --json
       (the robot: more-stack robot --checkpoint runs/finetune_teleop/checkpoints/step-00000300)
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence

from rclpy.node import Node

from more_common.action_contract import GAIT_NAMES
from more_common.cli import OneLineArgumentParser
from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.convert import command_to_msg
from more_ros.node_main import spin_node
from more_ros.params import declare_parameters, non_negative, positive
from more_teleop import joymap
from more_teleop.joymap import JoyConfig, JoyError, JoyMapper
from more_teleop.keymap import key_action, key_table
from more_teleop.teleop_core import Action, TeleopConfig, TeleopState

NODE_NAME = "more_teleop"
_JOY_DOC = joymap.__doc__.split("\n\n")[1]
HELP = __doc__.format(keys=key_table(), joy=_JOY_DOC)
_TC, _JC = TeleopConfig(), JoyConfig()
PARAMS = {
    "rate_hz": (5.0, positive, "command rate while in control [Hz] (5 = the VLA's decision rate), > 0"),
    "keyboard": (True, None, "read keys from stdin (raw mode on a terminal; any stream otherwise)"),
    "keyboard_control": (True, None, "the keyboard holds control from the start (m toggles)"),
    "joy_timeout_s": (0.5, positive, "a Joy message older than this reads as the deadman released [s], > 0"),
    "vx_step": (_TC.vx_step, positive, "vx per key press [m/s]"),
    "vy_step": (_TC.vy_step, positive, "vy per key press [m/s]"),
    "wz_step": (_TC.wz_step, positive, "wz per key press [rad/s]"),
    "height_presets": (list(_TC.height_presets), None, "body-height presets [m], increasing, containing 0.0"),
    "pitch_presets": (list(_TC.pitch_presets), None, "pitch presets [rad], increasing, containing 0.0"),
    "step_frequency": (_TC.step_frequency, positive, "step frequency of the command [Hz], 2..4"),
    "gait": (_TC.gait, lambda v: v in GAIT_NAMES, f"gait at start, one of {list(GAIT_NAMES)}"),
    **{
        f"joy.{k}": (v, non_negative, f"joystick mapping: {k}")
        for k, v in vars(_JC).items()
        if k not in ("deadzone", "scale")
    },
    "joy.deadzone": (_JC.deadzone, non_negative, "stick deflection below this reads 0, [0, 1)"),
    "joy.scale": (_JC.scale, positive, "full stick deflection = this fraction of the contract's bounds, (0, 1]"),
}


class KeyboardReader:
    """Characters from stdin on a daemon thread (a terminal is put in cbreak mode and restored on close)."""

    def __init__(self, stream=None) -> None:  # noqa: ANN001
        self.keys: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # None = the input ended
        self._stream = stream or sys.stdin
        self._restore = None
        fd = self._stream.fileno()
        if os.isatty(fd):
            import termios
            import tty

            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # keys without Enter, no echo; Ctrl-C still interrupts
            self._restore = lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        threading.Thread(target=self._read, args=(fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 1)
            except OSError:
                data = b""
            if not data:
                self.keys.put(None)
                return
            self.keys.put(data.decode("latin-1"))

    def close(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None


class TeleopNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from sensor_msgs.msg import Joy
        from std_srvs.srv import SetBool, Trigger

        from more_msgs.msg import QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, OVERRIDABLE, SENSOR_QOS

        p = declare_parameters(self, PARAMS)
        try:
            self.state = TeleopState(
                TeleopConfig(
                    vx_step=p["vx_step"],
                    vy_step=p["vy_step"],
                    wz_step=p["wz_step"],
                    height_presets=tuple(p["height_presets"]),
                    pitch_presets=tuple(p["pitch_presets"]),
                    step_frequency=p["step_frequency"],
                    gait=p["gait"],
                )
            )
            self.joy = JoyMapper(JoyConfig(**{k[len("joy.") :]: v for k, v in p.items() if k.startswith("joy.")}))
        except ValueError as err:
            raise ConfigurationError(f"{NODE_NAME}: {err}") from err
        self._joy_timeout = p["joy_timeout_s"]
        self._joy_enabled = False
        self._joy_time = -math.inf
        self._joy_error = ""
        self.keyboard_control = p["keyboard_control"] and p["keyboard"]
        self._pub = self.create_publisher(
            QuadrupedCommand, names.TELEOP_COMMAND, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(Joy, names.JOY, self._on_joy, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self._episode_clients = {
            "start": (self.create_client(Trigger, names.EPISODE_START), Trigger.Request()),
            "success": (self.create_client(SetBool, names.EPISODE_STOP), SetBool.Request(data=True)),
            "failure": (self.create_client(SetBool, names.EPISODE_STOP), SetBool.Request(data=False)),
            "discard": (self.create_client(Trigger, names.EPISODE_DISCARD), Trigger.Request()),
        }
        self.published = 0
        self._was_in_control = False
        self.keyboard = KeyboardReader() if p["keyboard"] else None
        self.create_timer(1.0 / p["rate_hz"], self._publish)
        self.create_timer(0.02, self._drain_keys)
        self._say(f"more-teleop: {'keyboard in control' if self.keyboard_control else 'keyboard released'}; h: keys")

    # -- operator feedback -----------------------------------------------------------------------
    def _say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # -- inputs ----------------------------------------------------------------------------------
    def _drain_keys(self) -> None:
        if self.keyboard is None:
            return
        while True:
            try:
                key = self.keyboard.keys.get_nowait()
            except queue.Empty:
                return
            if key is None:
                self.keyboard = None
                if self.keyboard_control:
                    self.keyboard_control = False
                    self._say("keyboard input ended: keyboard control released")
                return
            action = key_action(key)
            if action is not None:
                self.act(action)

    def _on_joy(self, msg) -> None:  # noqa: ANN001
        try:
            reading = self.joy.read(list(msg.axes), list(msg.buttons))
        except JoyError as err:
            if str(err) != self._joy_error:
                self.get_logger().error(f"joystick input rejected: {err}")
            self._joy_error = str(err)
            self._set_joy_enabled(False)
            return
        self._joy_error = ""
        self._joy_time = time.monotonic()
        self._set_joy_enabled(reading.enabled)
        if reading.enabled:
            self.state.apply(Action("set_vel", reading.velocity))
        for action in reading.actions:
            self.act(action)

    def _set_joy_enabled(self, enabled: bool) -> None:
        if self._joy_enabled and not enabled:
            self.state.apply(Action("halt"))  # the stick's last velocity must not outlive the deadman
        self._joy_enabled = enabled

    def act(self, action: Action) -> None:
        if self.state.apply(action):
            self._say(self.state.describe())
        elif action.kind == "episode":
            self._episode(action.arg)
        elif action.kind == "control":
            self.keyboard_control = not self.keyboard_control
            if not self.keyboard_control:
                self.state.apply(Action("halt"))
            self._say("keyboard in control" if self.keyboard_control else "keyboard released: the VLA drives")
        elif action.kind == "help":
            self._say(key_table())

    def _episode(self, event: str) -> None:
        # an episode starts and ends standing: a terminate latched for the last one must not end the next one
        self.state.apply(Action("halt"))
        client, request = self._episode_clients[event]
        if not client.service_is_ready():
            self._say(f"episode {event}: {client.srv_name} is not available (is episode_control running?)")
            return
        future = client.call_async(request)
        future.add_done_callback(lambda f: self._say(f"episode {event}: {f.result().message}"))

    # -- output ----------------------------------------------------------------------------------
    @property
    def in_control(self) -> bool:
        joy = self._joy_enabled and time.monotonic() - self._joy_time <= self._joy_timeout
        if self._joy_enabled and not joy:
            self._set_joy_enabled(False)
        return self.keyboard_control or joy

    def _publish(self) -> None:
        in_control = self.in_control
        if in_control:
            self._pub.publish(command_to_msg(self.state.command()))
            self.published += 1
        self._was_in_control = in_control

    def destroy_node(self) -> None:
        if self.keyboard is not None:
            self.keyboard.close()
        super().destroy_node()


def build_parser() -> argparse.ArgumentParser:
    return OneLineArgumentParser(
        prog="more-teleop",
        description=HELP.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(HELP.splitlines()[2:])
        + "\n\nROS arguments follow --ros-args, e.g. --ros-args -p rate_hz:=10.0 -p keyboard_control:=false",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    build_parser().parse_args(argv[:split])
    return spin_node(TeleopNode, argv[split:])


if __name__ == "__main__":
    raise SystemExit(main())
