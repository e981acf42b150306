"""go2_bridge node: JointTargets -> unitree_go/LowCmd at 500 Hz through the safety state machine;
LowState -> JointState, Imu and foot contacts.

Thin shell around safety.SafetyCore (all decisions are there). One single-threaded executor runs the
LowState/targets/e-stop callbacks and the 500 Hz cycle timer (steady clock), so an e-stop received
between two cycles is seen by the next one. Nothing here may crash the node: a bad message or an
exception in a callback is reported to the core (-> DAMPING, ERROR on /diagnostics); if computing a
cycle itself fails, a precomputed damping LowCmd is sent instead.

Each LowState goes through inputs.LowStateInput (CRC check, readings, remote combos) before the core
sees it; bad inputs of every kind are counted and reported as WARN on /diagnostics (inputs.InputMonitor).

How late the controller's targets reach the robot: for each new JointTargets, the first LowCmd after it minus
its stamp (the controller's step; the DDS hop and the wait for this cycle), `targets_age_p50_ms`, `_p99_ms`,
`_max_ms` on /diagnostics (unstamped targets are not counted). The walking policy falls more often the later its
targets and the older its state (the controller reports that half: docs/robot.md).

No LowCmd is published before the first valid LowState (nothing to talk to) or, with release_sport_mode,
before the sport-mode release has completed. `main` installs the SIGINT/SIGTERM handlers that send
damping before the process exits (`install_exit_damping`): a signal handler is a process-wide setting,
so it belongs to the program, not to the node's constructor.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node

from go2_bridge.inputs import InputMonitor, LowStateInput, Publishable, check_targets
from go2_bridge.lowcmd import MotorCommands, fill_lowcmd, init_lowcmd
from go2_bridge.lowstate import RobotState, foot_contacts
from go2_bridge.remote import DAMP_HOLD_FRAMES, HOLD_FRAMES, RESET_HOLD_FRAMES, ComboDetector
from go2_bridge.safety import Level, Mode, SafetyConfig, SafetyCore
from more_common.errors import ConfigurationError
from more_common.stats import p50_p99_max
from more_ros import diagnostics, names
from more_ros.convert import stamp_to_ns
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive

NODE_NAME = "go2_bridge"
EXIT_DAMPING_S = 0.05  # damping LowCmds sent on SIGINT/SIGTERM before exiting, at the cycle rate [s]
SAFETY_FIELDS = (
    "stand_up_duration_s", "stand_kp", "stand_kd", "activate_blend_s", "damping_kd", "target_timeout_s",
    "lowstate_timeout_s", "max_tilt_rad", "joint_limit_margin_rad", "velocity_limit_scale", "kp_max", "kd_max",
    "min_damping_s",
)  # fmt: skip
_DEFAULTS = SafetyConfig()
PARAMS = {
    # A 2 ms cycle checks every watchdog; far below it they become coarse, far above it the node only burns a core.
    "rate_hz": (500.0, lambda v: 1.0 <= v <= 2000.0, "LowCmd rate [Hz] in [1, 2000] (the Go2 expects 500)"),
    "stand_up_duration_s": (_DEFAULTS.stand_up_duration_s, positive, "PASSIVE->stand interpolation time [s]"),
    "stand_kp": (_DEFAULTS.stand_kp, positive, "kp while standing up / holding [Nm/rad]"),
    "stand_kd": (_DEFAULTS.stand_kd, positive, "kd while standing up / holding [Nm s/rad]"),
    "activate_blend_s": (_DEFAULTS.activate_blend_s, non_negative, "blend from stand to targets on ACTIVE [s]"),
    "damping_kd": (_DEFAULTS.damping_kd, positive, "kd in DAMPING (kp 0) [Nm s/rad]"),
    "target_timeout_s": (_DEFAULTS.target_timeout_s, positive, "ACTIVE damps when targets are older [s]"),
    "lowstate_timeout_s": (_DEFAULTS.lowstate_timeout_s, positive, "damps when LowState is older [s]"),
    "max_tilt_rad": (_DEFAULTS.max_tilt_rad, positive, "damps when |roll| or |pitch| exceeds this [rad]"),
    "joint_limit_margin_rad": (_DEFAULTS.joint_limit_margin_rad, non_negative, "measured q past a limit by this damps"),
    "velocity_limit_scale": (_DEFAULTS.velocity_limit_scale, positive, "measured |dq| > scale x limit damps"),
    "kp_max": (_DEFAULTS.kp_max, positive, "largest kp ever sent [Nm/rad]"),
    "kd_max": (_DEFAULTS.kd_max, positive, "largest kd ever sent [Nm s/rad]"),
    "min_damping_s": (_DEFAULTS.min_damping_s, non_negative, "DAMPING lasts at least this long [s]"),
    "auto_activate": (False, None, "go ACTIVE by itself once standing and targets are fresh (else: service)"),
    "remote_enabled": (True, None, "accept the Go2 remote's button combos (docs/deployment.md)"),
    "remote_hold_frames": (HOLD_FRAMES, positive, "stand_up/activate combos: exact buttons held this many LowStates"),
    "remote_damp_hold_frames": (DAMP_HOLD_FRAMES, positive, "damp combo: held this many LowStates"),
    "remote_reset_hold_frames": (RESET_HOLD_FRAMES, positive, "reset combo (leaves DAMPING): held this many LowStates"),
    "check_lowstate_crc": (True, None, "drop LowState with a wrong CRC (false only for a robot without LowState CRC)"),
    "max_bad_crc_frames": (10, positive, "this many bad-CRC LowStates in a row count as sensor loss (damps)"),
    "input_warn_hold_s": (2.0, positive, "a bad input keeps /diagnostics at WARN this long [s]"),
    "release_sport_mode": (False, None, "release the Go2's sport mode via the motion switcher before any LowCmd"),
    "sport_release_stand_down_s": (3.0, positive, "release: wait after StandDown before ReleaseMode [s]"),
    "sport_release_wait_s": (2.0, positive, "release: wait after ReleaseMode before checking again [s]"),
    "contact_threshold": (20.0, None, "foot force reading above which a foot counts as in contact"),
    "state_publish_divider": (1, positive, "publish JointState/Imu/contacts every N-th LowState"),
    "diagnostics_period_s": (0.5, positive, "period of /diagnostics [s]; transitions are reported at once"),
    "imu_frame": (names.BASE_FRAME, None, "frame_id of the Imu message"),
}
PERIOD_WINDOW = 2000


class BridgeNode(Node):
    def __init__(self, **node_kwargs: object) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.clock import Clock, ClockType
        from sensor_msgs.msg import Imu, JointState
        from std_msgs.msg import Bool, Float32MultiArray, String
        from std_srvs.srv import Trigger

        from more_msgs.msg import JointTargets
        from more_ros.qos import COMMAND_QOS, ESTOP_QOS, LATCHED_QOS, OVERRIDABLE, SENSOR_QOS, STATUS_QOS
        from unitree_go.msg import LowCmd, LowState

        p = self.params = declare_parameters(self, PARAMS)
        try:
            config = SafetyConfig(**{k: p[k] for k in SAFETY_FIELDS})
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self.core = SafetyCore(config)
        self.monitor = InputMonitor(hold_s=p["input_warn_hold_s"])
        try:
            combos = ComboDetector(
                hold_frames=p["remote_hold_frames"], damp_hold_frames=p["remote_damp_hold_frames"],
                reset_hold_frames=p["remote_reset_hold_frames"],
            )  # fmt: skip
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self.inputs = LowStateInput(
            self.core, self.monitor, combos if p["remote_enabled"] else None,
            check_crc=p["check_lowstate_crc"], max_bad_crc_frames=p["max_bad_crc_frames"],
        )  # fmt: skip
        self._lowcmd = init_lowcmd(LowCmd())
        # The fallback if a cycle cannot be computed: damping, checksummed once here.
        damp = MotorCommands.zero_torque(config.stand_pose)
        damp.kd[:] = config.damping_kd
        self._damping_lowcmd = fill_lowcmd(init_lowcmd(LowCmd()), damp)
        self._String = String

        # LowCmd: reliable, depth 1. A reliable writer matches both reliable and best-effort readers
        # (whatever the robot's reader asks for) and, keeping only the newest command, never blocks.
        self._lowcmd_pub = self.create_publisher(LowCmd, names.LOWCMD, COMMAND_QOS, qos_overriding_options=OVERRIDABLE)
        self._joint_pub = self.create_publisher(
            JointState, names.JOINT_STATES, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._imu_pub = self.create_publisher(Imu, names.IMU, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self._contacts_pub = self.create_publisher(
            Float32MultiArray, names.FOOT_CONTACTS, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._state_pub = self.create_publisher(
            String, names.BRIDGE_STATE, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            LowState, names.LOWSTATE, self._on_lowstate, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            JointTargets, names.JOINT_TARGETS, self._on_targets, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(Bool, names.ESTOP, self._on_estop, ESTOP_QOS, qos_overriding_options=OVERRIDABLE)
        for request, service in (
            ("stand_up", names.BRIDGE_STAND_UP), ("activate", names.BRIDGE_ACTIVATE),
            ("damp", names.BRIDGE_DAMP), ("reset", names.BRIDGE_RESET),
        ):  # fmt: skip
            self.create_service(Trigger, service, self._trigger_handler(request))

        self._release = None
        if p["release_sport_mode"]:
            self._setup_sport_release()

        self._lowstate_count = 0
        self._published = 0
        self._exiting = False  # set by the exit signal: from then on every LowCmd sent is damping
        self._periods: deque[float] = deque(maxlen=PERIOD_WINDOW)
        self._target_ages_ms: deque[float] = deque(maxlen=PERIOD_WINDOW)
        self._new_target_stamp_ns = 0  # the stamp of targets no LowCmd has carried yet (0: none)
        self._last_cycle: float | None = None
        self._last_diag = -float("inf")
        self._reported = (None, None)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / p["rate_hz"], self._cycle, clock=steady)
        self._publish_state()
        if not p["check_lowstate_crc"]:
            self.get_logger().warning("check_lowstate_crc is false: LowState frames are not checked")
        self.get_logger().info(
            f"bridge up: {p['rate_hz']:.0f} Hz, PASSIVE; stand up with {names.BRIDGE_STAND_UP}"
            + (" after releasing sport mode" if p["release_sport_mode"] else "")
        )

    def send_exit_damping(self, signum: int) -> None:
        """Send damping LowCmds (if any LowCmd was ever sent) so the motors are not left on their last command."""
        self._exiting = True
        if self._published:
            # At the cycle rate for EXIT_DAMPING_S, not three back to back: a best-effort reader (the Go2's) may
            # drop a burst, and the frames must be out of this process before it exits. Reliable readers (a
            # recorder) are then given a moment to acknowledge them.
            period = 1.0 / self.params["rate_hz"]
            for _ in range(max(3, round(EXIT_DAMPING_S / period))):
                self._lowcmd_pub.publish(self._damping_lowcmd)
                time.sleep(period)
            self._lowcmd_pub.wait_for_all_acked(Duration(seconds=0.1))
            self.get_logger().warning(f"signal {signum}: sent damping, exiting")

    # -- inputs ------------------------------------------------------------------------------------
    def _on_lowstate(self, msg) -> None:  # noqa: ANN001
        now = time.monotonic()
        try:
            out = self.inputs.on_message(msg, now)
            for request, accepted, why in self.inputs.requests:
                self.get_logger().info(f"remote {request}: {why}" + ("" if accepted else " (refused)"))
            self.inputs.requests.clear()
            if out is None:
                return
            self._lowstate_count += 1
            if self._lowstate_count % self.params["state_publish_divider"] == 0:
                self._publish_state_topics(*out)
        except Exception as err:  # never crash the node on a LowState: damp and say why
            self.core.fault(f"LowState handling failed: {type(err).__name__}: {err}", now)

    def _publish_state_topics(self, state: RobotState, ok: Publishable) -> None:
        from go2_bridge.convert import contacts_msg, imu_msg, joint_state_msg

        stamp = self.get_clock().now().to_msg()
        if ok.joint_state:
            self._joint_pub.publish(joint_state_msg(state, stamp))
        if ok.imu:
            self._imu_pub.publish(imu_msg(state, stamp, self.params["imu_frame"], ok.accelerometer))
        self._contacts_pub.publish(contacts_msg(foot_contacts(state.foot_force, self.params["contact_threshold"])))

    def _on_targets(self, msg) -> None:  # noqa: ANN001
        from go2_bridge.convert import targets_from_msg

        now = time.monotonic()
        try:
            targets = targets_from_msg(msg)
        except Exception as err:
            self.monitor.report("targets_malformed", f"{type(err).__name__}: {err}", now)
            self.core.fault(f"bad JointTargets: {type(err).__name__}: {err}", now)
            return
        problems = check_targets(targets, self.core.config.kp_max, self.core.config.kd_max)
        if problems:
            kind = "targets_beyond_limits" if targets.finite else "targets_invalid"
            self.monitor.report(kind, "; ".join(problems), now)
        # The core gets them all the same: non-finite targets damp an ACTIVE robot, the rest is clamped.
        self.core.on_targets(targets, now)
        self._new_target_stamp_ns = stamp_to_ns(msg.header.stamp)

    def _on_estop(self, msg) -> None:  # noqa: ANN001
        self.core.set_estop(bool(msg.data), time.monotonic())

    def _trigger_handler(self, request: str):
        def handle(_req, response):  # noqa: ANN001
            response.success, response.message = self.core.request(request, time.monotonic())
            self.get_logger().info(f"{request}: {response.message}")
            return response

        return handle

    # -- the 500 Hz cycle ---------------------------------------------------------------------------
    def _cycle(self) -> None:
        t = time.perf_counter()
        if self._last_cycle is not None:
            self._periods.append(t - self._last_cycle)
        self._last_cycle = t
        now = time.monotonic()
        try:
            if self._release is not None and not self._release.done:
                self._poll_sport_release(now)
            if self.params["auto_activate"] and self.core.mode is Mode.STAND_UP:
                self.core.request("activate", now)  # refused until standing with fresh targets
            cmds = self.core.step(now)
            msg = fill_lowcmd(self._lowcmd, cmds)
        except Exception as err:  # the core must not fail; if it does, damp and say why
            self.core.fault(f"cycle failed: {type(err).__name__}: {err}", now)
            msg = self._damping_lowcmd
        if self.core.has_lowstate and (self._release is None or self._release.done):
            self._lowcmd_pub.publish(self._damping_lowcmd if self._exiting else msg)
            self._published += 1
            if self._new_target_stamp_ns > 0:  # the first LowCmd after new targets: how late they are
                age_ms = (self.get_clock().now().nanoseconds - self._new_target_stamp_ns) / 1e6
                self._target_ages_ms.append(age_ms)
                self._new_target_stamp_ns = 0
            # The exit signal runs between two bytecodes of this cycle, possibly after the check above: damping
            # must still be the last command the motors get, not this cycle's.
            if self._exiting:
                self._lowcmd_pub.publish(self._damping_lowcmd)
        try:
            news = bool(self.monitor.news)
            for kind, detail in self.monitor.news:
                self.get_logger().warning(f"bad input {kind}: {detail}")
            self.monitor.news.clear()
            if (self.core.mode, self.core.reason) != self._reported:
                self._publish_state()
                self._publish_diagnostics(now)
            elif news or now - self._last_diag >= self.params["diagnostics_period_s"]:
                self._publish_diagnostics(now)
        except Exception as err:  # reporting must not stop the motor commands
            self.core.fault(f"reporting failed: {type(err).__name__}: {err}", now)

    # -- reporting ----------------------------------------------------------------------------------
    def _publish_state(self) -> None:
        self._reported = (self.core.mode, self.core.reason)
        self._state_pub.publish(self._String(data=f"{self.core.mode.value}: {self.core.reason}"))
        text = f"state {self.core.mode.value}: {self.core.reason}"
        # rclpy wants one severity per call site, hence two calls
        if self.core.level is Level.ERROR:
            self.get_logger().error(text)
        else:
            self.get_logger().info(text)

    def loop_stats_ms(self) -> dict[str, float]:
        return p50_p99_max(np.asarray(self._periods) * 1e3)

    def _publish_diagnostics(self, now: float) -> None:
        """One status: level = the worse of the core's (ERROR when it damped on a fault) and WARN while bad
        inputs were seen within input_warn_hold_s; message = state and reason, then the recent bad inputs."""
        self._last_diag = now
        values: dict[str, object] = dict(self.core.status(now))
        values["lowcmd_published"] = self._published
        values["lowstate_accepted"] = self.inputs.accepted
        values["lowstate_crc_errors"] = self.inputs.crc_errors
        values["lowstate_crc_check"] = "on" if self.inputs.check_crc else "OFF"
        for kind, count in self.monitor.counts().items():
            values[f"bad_input.{kind}"] = count
        for k, v in self.loop_stats_ms().items():
            values[f"period_{k}_ms"] = v
        for k, v in p50_p99_max(self._target_ages_ms).items():
            values[f"targets_age_{k}_ms"] = v
        if self._release is not None:
            values["sport_mode_release"] = f"{self._release.phase.value}: {self._release.detail}"
        level, message = int(self.core.level), f"{self.core.mode.value}: {self.core.reason}"
        recent = self.monitor.summary(now)
        if recent:
            level, message = max(level, int(Level.WARN)), f"{message} | bad input: {recent}"
        array = diagnostics.diagnostic_array(
            f"{NODE_NAME}: safety",
            level,
            message,
            values,
            self.get_clock().now().to_msg(),
            hardware_id="unitree_go2",
        )
        self._diag_pub.publish(array)

    # -- sport mode ---------------------------------------------------------------------------------
    def _setup_sport_release(self) -> None:
        from go2_bridge.sport_mode import SportModeRelease
        from more_ros.qos import OVERRIDABLE, STATUS_QOS
        from unitree_api.msg import Request, Response

        self._release = SportModeRelease(
            stand_down_s=self.params["sport_release_stand_down_s"], release_wait_s=self.params["sport_release_wait_s"]
        )
        self._Request = Request
        self._switcher_pub = self.create_publisher(
            Request, names.MOTION_SWITCHER_REQUEST, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._sport_pub = self.create_publisher(
            Request, names.SPORT_REQUEST, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            Response,
            names.MOTION_SWITCHER_RESPONSE,
            self._on_switcher_response,
            STATUS_QOS,
            qos_overriding_options=OVERRIDABLE,
        )
        self._request_id = int(time.time() * 1000)

    def _on_switcher_response(self, msg) -> None:  # noqa: ANN001
        try:
            self._release.on_response(int(msg.header.identity.api_id), int(msg.header.status.code), str(msg.data))
        except Exception as err:
            self.get_logger().error(f"bad motion switcher response: {type(err).__name__}: {err}")

    def _poll_sport_release(self, now: float) -> None:
        before = self._release.phase
        req = self._release.poll(now)
        if req is not None:
            msg = self._Request()
            self._request_id += 1
            msg.header.identity.id = self._request_id
            msg.header.identity.api_id = req.api_id
            msg.parameter = req.parameter
            (self._switcher_pub if req.service == "motion_switcher" else self._sport_pub).publish(msg)
        if self._release.phase is not before:
            self.get_logger().info(f"sport mode release: {self._release.phase.value} {self._release.detail}")
            if self._release.phase.value == "FAILED":
                self.core.fault(f"sport mode release failed: {self._release.detail}", now)


def install_exit_damping(node: BridgeNode) -> None:
    """On SIGINT/SIGTERM send damping LowCmds before exiting, instead of leaving the motors on their last
    command. (rclpy's own handler would shut the context down first, and nothing could be sent.)

    The handler then shuts the context down, which wakes the executor and ends its spin; it does not raise:
    a signal can arrive while rclpy converts a message in C++, where a raised KeyboardInterrupt comes back
    as a RuntimeError and the process would exit with an error after damping."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        try:
            node.send_exit_damping(signum)
        finally:
            node.context.try_shutdown()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _make_node() -> BridgeNode:
    node = BridgeNode()
    install_exit_damping(node)
    return node


def main(args: list[str] | None = None) -> int:
    return run_node(
        _make_node,
        prog="go2_bridge_node",
        description="Unitree Go2 bridge: JointTargets -> LowCmd (500 Hz, CRC) through the safety state machine; "
        "LowState -> JointState/Imu/foot contacts. Services: stand_up, activate, damp, reset; e-stop topic.",
        argv=args,
    )


if __name__ == "__main__":
    raise SystemExit(main())
