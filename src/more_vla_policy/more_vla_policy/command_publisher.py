"""Publish a fixed QuadrupedCommand at a steady rate: bring-up, tests and the simulated demo.

Every contract dim is a parameter (defaults: the standing command). Values outside the contract's
bounds are refused at start-up by name. After `duration_s` (0 = forever) it switches to the stop
command and keeps publishing it, so whatever listens never keeps moving on a stale command.
"""

from __future__ import annotations

import time

from rclpy.node import Node

from more_common.action_contract import ACTION_NAMES, DEFAULT_SPEC, STAND_COMMAND, TERMINATE, action_from_mapping
from more_common.errors import ConfigurationError
from more_ros.convert import command_to_msg, stop_msg
from more_ros.names import COMMAND
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive

NODE_NAME = "command_publisher"


class CommandPublisher(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from more_ros.qos import COMMAND_QOS, OVERRIDABLE

        spec = {
            "rate_hz": (10.0, positive, "publish rate [Hz], > 0"),
            "duration_s": (0.0, non_negative, "seconds of motion before switching to stop (0 = forever)"),
            "topic": (COMMAND, None, "output topic"),
        }
        for i, name in enumerate(ACTION_NAMES):
            default = bool(STAND_COMMAND[i]) if i == TERMINATE else float(STAND_COMMAND[i])
            spec[name] = (default, None, f"command dim {name} (action contract)")
        params = declare_parameters(self, spec)
        action = action_from_mapping({name: float(params[name]) for name in ACTION_NAMES})
        outside = DEFAULT_SPEC.out_of_range(action)
        if outside:
            raise ConfigurationError(
                "parameters outside the action contract's bounds: "
                + ", ".join(
                    f"{n}={params[n]} not in [{DEFAULT_SPEC.low[i]}, {DEFAULT_SPEC.high[i]}]"
                    for i, n in enumerate(ACTION_NAMES)
                    if n in outside
                )
            )
        self._action = DEFAULT_SPEC.for_controller(action)
        self._duration_s = params["duration_s"]
        self._start = time.monotonic()
        self._pub = self.create_publisher(
            type(stop_msg()), params["topic"], COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_timer(1.0 / params["rate_hz"], self._tick)

    def _tick(self) -> None:
        stamp = self.get_clock().now().to_msg()
        moving = self._duration_s == 0.0 or time.monotonic() - self._start < self._duration_s
        self._pub.publish(command_to_msg(self._action, stamp=stamp) if moving else stop_msg(stamp))


def main(args: list[str] | None = None) -> int:
    return run_node(CommandPublisher, "command_publisher", __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
