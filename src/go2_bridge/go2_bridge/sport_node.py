"""go2_sport: the sport-mode backend. QuadrupedCommand -> unitree_api/Request on /api/sport/request; the Go2's
own locomotion walks.

Thin shell around sport_core.SportCore (every decision is there): it converts /more/command, /more/estop and
/api/sport/response for the core, runs it on a steady-clock timer (`tick_rate_hz`; the core bounds Move to
`move_rate_hz` itself) and right after every e-stop message and service call, publishes the requests it returns,
and reports on /diagnostics ("go2_sport: sport mode": state, dims followed / ignored, clipping, requests sent and
the robot's status code per call) and the latched /more/sport/state. Services (std_srvs/Trigger):
/more/sport/{stand_up,stand_down,damp,recovery_stand}.

This node never publishes a LowCmd and never talks to the motion switcher: it drives the robot in the mode the
Go2 boots in. The low-level path (policy -> wtw_controller -> go2_bridge, which releases sport mode) is the other
backend of the robot stack; the two never run together. On SIGINT/SIGTERM it sends StopMove before exiting.
"""

from __future__ import annotations

import time

from rclpy.node import Node

from go2_bridge.sport_api import FIRMWARES, load_api_config
from go2_bridge.sport_core import MAX_MOVE_RATE_HZ, REQUESTS, Level, SportConfig, SportCore, SportRequest
from more_common.errors import ConfigurationError
from more_common.typed_config import ConfigError
from more_ros import diagnostics, names
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive

NODE_NAME = "go2_sport"
_D = SportConfig()


def _pair(v: object) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2


PARAMS = {
    "firmware_api": ("current", lambda v: v in FIRMWARES, "sport API profile: current (firmware >= 1.1.6) | legacy"),
    "api_config_file": ("", None, "YAML overriding api ids / gait calls of the profile (docs/robot.md); empty: none"),
    "move_rate_hz": (_D.move_rate_hz, lambda v: 0 < v <= MAX_MOVE_RATE_HZ, "Move at most this often [Hz], (0, 50]"),
    "command_timeout_s": (_D.command_timeout_s, positive, "no fresh command this long: StopMove [s]"),
    "vx_limits": (list(_D.vx_limits), _pair, "vx is clipped into [low, high] [m/s]"),
    "vy_limits": (list(_D.vy_limits), _pair, "vy is clipped into [low, high] [m/s]"),
    "wz_limits": (list(_D.wz_limits), _pair, "wz is clipped into [low, high] [rad/s]"),
    "posture": (_D.posture, None, "send pitch (Euler 1007) and, where offered, body height (BodyHeight 1013)"),
    "pitch_limits": (list(_D.pitch_limits), _pair, "pitch is clipped into [low, high] [rad]"),
    "body_height_limits": (list(_D.body_height_limits), _pair, "body height offset clip [low, high] [m]"),
    "posture_rate_hz": (_D.posture_rate_hz, positive, "Euler / BodyHeight at most this often [Hz]"),
    "switch_gaits": (_D.switch_gaits, None, "select the commanded gait with the firmware's gait calls"),
    "gait_hold_s": (_D.gait_hold_s, non_negative, "a gait must be asked for this long before it is selected [s]"),
    "stand_up_settle_s": (_D.stand_up_settle_s, positive, "StandUp / RecoveryStand -> BalanceStand after [s]"),
    "estop_repeat_s": (_D.estop_repeat_s, positive, "Damp is repeated this often while the e-stop is held [s]"),
    "tick_rate_hz": (100.0, positive, "rate of the decision timer [Hz] (Move is bounded by move_rate_hz)"),
    "diagnostics_period_s": (0.5, positive, "period of /diagnostics [s]; state changes are reported at once"),
}
SERVICES = {
    "stand_up": names.SPORT_STAND_UP,
    "stand_down": names.SPORT_STAND_DOWN,
    "damp": names.SPORT_DAMP,
    "recovery_stand": names.SPORT_RECOVERY_STAND,
}
assert set(SERVICES) == set(REQUESTS)


def make_core(p: dict) -> SportCore:
    """The core the parameters ask for (ConfigurationError naming the bad parameter or YAML key)."""
    try:
        api = load_api_config(p["firmware_api"], p["api_config_file"] or None)
    except ConfigError as err:
        raise ConfigurationError(f"api_config_file: {err}") from err
    fields = (
        "move_rate_hz", "command_timeout_s", "posture", "posture_rate_hz", "switch_gaits", "gait_hold_s",
        "stand_up_settle_s", "estop_repeat_s",
    )  # fmt: skip
    limits = ("vx_limits", "vy_limits", "wz_limits", "pitch_limits", "body_height_limits")
    try:
        config = SportConfig(
            **{k: p[k] for k in fields}, **{k: (float(p[k][0]), float(p[k][1])) for k in limits}
        )  # fmt: skip
    except (ValueError, TypeError) as err:
        raise ConfigurationError(f"parameter {err}") from err
    return SportCore(config, api)


class SportNode(Node):
    def __init__(self, **node_kwargs: object) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.clock import Clock, ClockType
        from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        from more_msgs.msg import QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, ESTOP_QOS, LATCHED_QOS, OVERRIDABLE, STATUS_QOS
        from unitree_api.msg import Request, Response

        p = self.params = declare_parameters(self, PARAMS)
        self.core = make_core(p)
        self._Request, self._String = Request, String
        self._request_id = int(time.time() * 1000)
        # Requests reliable (a reliable writer matches reliable and best-effort readers); answers read best effort
        # (a best-effort reader matches whichever writer the robot has).
        self._request_pub = self.create_publisher(
            Request, names.SPORT_REQUEST, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._state_pub = self.create_publisher(
            String, names.SPORT_STATE, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(Bool, names.ESTOP, self._on_estop, ESTOP_QOS, qos_overriding_options=OVERRIDABLE)
        answers_qos = QoSProfile(
            history=QoSHistoryPolicy.KEEP_LAST, depth=50, reliability=QoSReliabilityPolicy.BEST_EFFORT
        )
        self.create_subscription(
            Response, names.SPORT_RESPONSE, self._on_response, answers_qos, qos_overriding_options=OVERRIDABLE
        )
        for what, service in SERVICES.items():
            self.create_service(Trigger, service, self._handler(what))
        self._last_diag = -float("inf")
        self._reported: tuple[object, ...] = ()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / p["tick_rate_hz"], self._tick, clock=steady)
        self._report(time.monotonic(), force=True)
        self.get_logger().info(
            f"sport-mode backend up: firmware API {self.core.api.firmware}, Move <= {p['move_rate_hz']:.0f} Hz, "
            f"follows {','.join(self.core.followed)}; no LowCmd, no sport-mode release"
        )

    # -- inputs ------------------------------------------------------------------------------------------
    def _on_command(self, msg) -> None:  # noqa: ANN001
        from more_ros.convert import msg_to_command

        now = time.monotonic()
        try:
            action = msg_to_command(msg)
        except Exception as err:  # a malformed message is an invalid command: stop, report
            action = f"malformed QuadrupedCommand: {type(err).__name__}: {err}"
        self.core.on_command(action, now)

    def _on_estop(self, msg) -> None:  # noqa: ANN001
        now = time.monotonic()
        self.core.on_estop(bool(msg.data), now)
        self._tick(now)  # at once, not at the next tick

    def _on_response(self, msg) -> None:  # noqa: ANN001
        try:
            self.core.on_response(int(msg.header.identity.api_id), int(msg.header.status.code))
        except Exception as err:
            self.get_logger().error(f"unreadable sport response: {type(err).__name__}: {err}")

    def _handler(self, what: str):
        def handle(_req, response):  # noqa: ANN001
            now = time.monotonic()
            response.success, response.message = self.core.request(what, now)
            self.get_logger().info(f"{what}: {response.message}")
            self._tick(now)
            return response

        return handle

    # -- output ------------------------------------------------------------------------------------------
    def _tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for req in self.core.step(now):
            self._publish(req)
        self._report(now)

    def _publish(self, req: SportRequest) -> None:
        msg = self._Request()
        self._request_id += 1
        msg.header.identity.id = self._request_id
        msg.header.identity.api_id = req.api_id
        msg.parameter = req.parameter
        self._request_pub.publish(msg)

    def send_exit_stop(self, signum: int) -> None:
        for req in self.core.exit_requests():
            self._publish(req)
        self.get_logger().warning(f"signal {signum}: sent StopMove, exiting")

    def _report(self, now: float, force: bool = False) -> None:
        level, message = self.core.level(now)
        key = (self.core.state, self.core.reason, level, message)
        changed = key != self._reported
        if changed:
            self._reported = key
            self._state_pub.publish(self._String(data=f"{self.core.state.value}: {self.core.reason}"))
            if level is Level.ERROR:
                self.get_logger().error(message)
            elif level is Level.WARN:
                self.get_logger().warning(message)
            else:
                self.get_logger().info(message)
        if force or changed or now - self._last_diag >= self.params["diagnostics_period_s"]:
            self._last_diag = now
            stamp = self.get_clock().now().to_msg()
            array = diagnostics.diagnostic_array(
                f"{NODE_NAME}: sport mode", int(level), message, self.core.values(), stamp, "unitree_go2"
            )
            self._diag_pub.publish(array)


def install_exit_stop(node: SportNode) -> None:
    """On SIGINT/SIGTERM send StopMove, then shut the context down (the spin ends cleanly; see the bridge's
    install_exit_damping for why the handler does not raise)."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        try:
            node.send_exit_stop(signum)
        finally:
            node.context.try_shutdown()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _make_node() -> SportNode:
    node = SportNode()
    install_exit_stop(node)
    return node


def main(args: list[str] | None = None) -> int:
    return run_node(
        _make_node,
        prog="go2_sport_node",
        description="Unitree Go2 sport-mode backend: QuadrupedCommand -> sport API requests (Move, StopMove, Euler, "
        "gait calls) on /api/sport/request; e-stop -> StopMove + Damp. Services: stand_up, stand_down, damp, "
        "recovery_stand. Never a LowCmd, never a sport-mode release.",
        argv=args,
    )


if __name__ == "__main__":
    raise SystemExit(main())
