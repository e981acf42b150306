"""wtw_controller node: QuadrupedCommand + JointState + Imu -> a locomotion backend -> JointTargets at 50 Hz.

Thin shell around core.Controller with one of two backends (parameter `backend`):
- `velocity` (the default when no `run_dir` is given): a legged-gym / robot_lab velocity policy in ONNX,
  by default the bundled open Go2 walking policy (velocity.py); follows vx, vy, wz and terminate.
- `wtw`: walk-these-ways from a TorchScript run directory (`run_dir`, chosen automatically when given);
  follows all 12 command dims.
The policy step runs on a steady-clock timer (50 Hz); inputs are stored by their callbacks on the same
single-threaded executor. Watchdogs (in the core): no command for command_timeout_s -> stand in place; no joint
state / IMU for sensor_timeout_s -> no targets (the bridge then damps after its target timeout). An exception in
a step publishes nothing (same effect) and reports ERROR on /diagnostics; the node never dies on bad input. An
invalid command (NaN, wrong size) is replaced by the stand command and reported as ERROR. /diagnostics also
names the dims the backend does not follow and those the current command asks for anyway, and how old the joint
state was at each step (`state_age_p50_ms`, `_p99_ms`, `_max_ms`: the step's time minus the bridge's stamp).
While their p99 exceeds `state_age_warn_ms` the level is WARN and |vx|, |vy| are capped at `stale_speed_cap`: the
walking policy falls more often on a stale state, the more the faster it walks (state_age.py). A state stamped after
the step (the bridge's clock ahead of this node's) warns and caps the same way: its age is unknown.
When the bridge reports ACTIVE (it just started following targets) the backend is reset, as walk-these-ways'
deploy agent starts from a fresh history at the stand pose.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace

import numpy as np
from rclpy.node import Node

from more_common.errors import ConfigurationError
from more_common.stats import p50_p99_max
from more_common.typed_config import ConfigError
from more_ros import diagnostics, names
from more_ros.convert import msg_to_command, stamp_to_ns
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, non_negative, positive
from wtw_controller.backend import not_followed, requested_but_ignored
from wtw_controller.core import Controller
from wtw_controller.joint_order import SDK_JOINT_NAMES, index_by_name
from wtw_controller.state_age import SPEED_CAP, WARN_MS, StaleStateConfig, StaleStateGuard

NODE_NAME = "wtw_controller"
BACKENDS = ("velocity", "wtw")
PARAMS = {
    "backend": ("", lambda v: v in ("", *BACKENDS), "velocity | wtw; empty: wtw if run_dir is given, else velocity"),
    "run_dir": ("", None, "wtw: walk-these-ways run directory (checkpoints/{body,adaptation_module}_latest.jit)"),
    "policy_file": ("", None, "velocity: ONNX policy (45 obs -> 12 actions); empty: the bundled open Go2 policy"),
    "config_file": ("", None, "YAML overriding WtwConfig / VelocityConfig fields; empty: defaults"),
    "posture": (
        False,
        None,
        "velocity: true follows body_height and pitch by moving the policy's default pose (simulation-"
        "tested only, docs/robot.md); false: reports them; sets VelocityConfig posture.enabled",
    ),
    "rate_hz": (50.0, positive, "policy rate [Hz]; both backends were trained at 50"),
    "command_timeout_s": (0.5, positive, "no QuadrupedCommand for this long -> stand in place [s]"),
    "sensor_timeout_s": (0.1, positive, "no JointState/Imu for this long -> stop publishing targets [s]"),
    "torch_threads": (1, non_negative, "wtw: torch CPU threads (0: torch's default)"),
    "reset_on_activate": (True, None, "reset the backend (history, actions, trim) when the bridge turns ACTIVE"),
    "diagnostics_period_s": (1.0, positive, "period of /diagnostics [s]; level changes are reported at once"),
    "state_age_warn_ms": (
        WARN_MS,
        non_negative,
        "the joint state is stale while its p99 age at the steps exceeds this [ms] (WARN, speed cap); 0: never",
    ),
    "stale_speed_cap": (SPEED_CAP, non_negative, "|vx|, |vy| at most this while the state is stale [m/s]; 0: no cap"),
    "max_speed": (0.0, non_negative, "|vx|, |vy| at most this always [m/s]; 0: the backend's own ranges"),
    "max_yaw_rate": (0.0, non_negative, "|wz| at most this always [rad/s]; 0: the backend's own ranges"),
}
WINDOW = 500


def make_backend(p: dict):  # noqa: ANN201 - a Backend
    """The backend the parameters ask for (raises ConfigurationError naming the bad one)."""
    kind = p["backend"] or ("wtw" if p["run_dir"] else "velocity")
    try:
        if kind == "wtw":
            if not p["run_dir"]:
                raise ConfigurationError("backend 'wtw' needs parameter 'run_dir': a walk-these-ways run you trust")
            if p["torch_threads"]:
                import torch

                torch.set_num_threads(p["torch_threads"])
            from wtw_controller.config import load_config
            from wtw_controller.policy import PolicyLoadError, WtwPolicy
            from wtw_controller.wtw_backend import WtwBackend

            config = load_config(p["config_file"] or None)
            try:
                policy = WtwPolicy(p["run_dir"], history_dim=config.history_length * 70)
            except PolicyLoadError as err:
                raise ConfigurationError(str(err)) from err
            return WtwBackend(policy, config), p["run_dir"]
        if p["run_dir"]:
            raise ConfigurationError("parameter 'run_dir' is for backend 'wtw'; backend 'velocity' takes 'policy_file'")
        from wtw_controller.onnx_policy import OnnxPolicy, PolicyLoadError
        from wtw_controller.velocity import VelocityBackend, load_velocity_config

        config = load_velocity_config(p["config_file"] or None)
        config = replace(config, posture=replace(config.posture, enabled=bool(p["posture"])))
        try:
            policy = OnnxPolicy(p["policy_file"] or None)
        except PolicyLoadError as err:
            raise ConfigurationError(str(err)) from err
        return VelocityBackend(policy, config), policy.source
    except (ConfigError, ValueError) as err:
        raise ConfigurationError(str(err)) from err


class ControllerNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.clock import Clock, ClockType
        from sensor_msgs.msg import Imu, JointState
        from std_msgs.msg import String

        from more_msgs.msg import JointTargets, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, OVERRIDABLE, SENSOR_QOS, STATUS_QOS

        p = self.params = declare_parameters(self, PARAMS)
        backend, source = make_backend(p)
        self._guard = StaleStateGuard(StaleStateConfig(p["state_age_warn_ms"], p["stale_speed_cap"]), WINDOW)
        self.core = Controller(
            backend, p["command_timeout_s"], p["sensor_timeout_s"], self._guard, p["max_speed"], p["max_yaw_rate"]
        )
        self._backend_values = {
            "backend": backend.name,
            "max_speed": p["max_speed"] or "the backend's ranges",
            "max_yaw_rate": p["max_yaw_rate"] or "the backend's ranges",
            "dims_followed": ",".join(backend.followed),
            "dims_not_followed": ",".join(not_followed(backend.followed)) or "none",
        }
        self._JointTargets = JointTargets
        self._kp = [float(backend.kp)] * 12
        self._kd = [float(backend.kd)] * 12
        self._zeros = [0.0] * 12

        self._targets_pub = self.create_publisher(
            JointTargets, names.JOINT_TARGETS, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            JointState, names.JOINT_STATES, self._on_joint_state, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(Imu, names.IMU, self._on_imu, SENSOR_QOS, qos_overriding_options=OVERRIDABLE)
        self.create_subscription(
            QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self.create_subscription(
            String, names.BRIDGE_STATE, self._on_bridge_state, LATCHED_QOS, qos_overriding_options=OVERRIDABLE
        )

        self._index: np.ndarray | None = None
        self._index_names: tuple[str, ...] = ()
        self._status = "starting"
        self._invalid = False
        self._ignored_now = "none"
        self._level = diagnostics.OK
        self._error: str | None = None
        self._published = 0
        self._periods: deque[float] = deque(maxlen=WINDOW)
        self._step_ms: deque[float] = deque(maxlen=WINDOW)
        self._state_stamp_ns = 0  # the bridge's stamp on the newest JointState
        self._last_tick: float | None = None
        self._last_diag = -float("inf")
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / p["rate_hz"], self._tick, clock=steady)
        self.get_logger().info(f"{backend.name} backend, policy {source}, at {p['rate_hz']:.0f} Hz")
        self._exit_on_signal()

    def _exit_on_signal(self) -> None:
        """SIGINT/SIGTERM shut the context down (the executor's spin then ends cleanly) instead of raising:
        raised inside a C call (a MuJoCo step, a publish, an ONNX run) a KeyboardInterrupt comes back as a
        RuntimeError and the process would exit with a traceback."""
        import signal

        def handler(_signum: int, _frame: object) -> None:
            self.context.try_shutdown()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    # -- inputs --------------------------------------------------------------------------------------
    def _on_joint_state(self, msg) -> None:  # noqa: ANN001
        try:
            names_now = tuple(msg.name)
            if names_now != self._index_names:
                self._index, self._index_names = index_by_name(names_now, SDK_JOINT_NAMES), names_now
            pos = np.asarray(msg.position, dtype=np.float64)[self._index]
            vel = np.asarray(msg.velocity, dtype=np.float64)[self._index]
            self.core.on_joint_state(pos, vel, time.monotonic())
            self._state_stamp_ns = stamp_to_ns(msg.header.stamp)
        except (KeyError, IndexError, ValueError) as err:
            self._error = f"bad JointState: {err}"

    def _on_imu(self, msg) -> None:  # noqa: ANN001
        o, g = msg.orientation, msg.angular_velocity
        self.core.on_imu(np.array([o.x, o.y, o.z, o.w]), time.monotonic(), np.array([g.x, g.y, g.z]))

    def _on_command(self, msg) -> None:  # noqa: ANN001
        self.core.on_command(msg_to_command(msg), time.monotonic())

    def _on_bridge_state(self, msg) -> None:  # noqa: ANN001
        if self.params["reset_on_activate"] and msg.data.startswith("ACTIVE"):
            self.core.reset()

    # -- the 50 Hz step ------------------------------------------------------------------------------
    def _tick(self) -> None:
        t = time.perf_counter()
        if self._last_tick is not None:
            self._periods.append(t - self._last_tick)
        self._last_tick = t
        now = time.monotonic()
        self._guard.record(self.get_clock().now().nanoseconds, self._state_stamp_ns)
        try:
            result = self.core.step(now)
            self._status, self._invalid = result.status, result.invalid_input
            ignored = requested_but_ignored(self.core.fresh_command(now), self.core.backend.followed)
            self._ignored_now = ",".join(ignored) or "none"
            if result.targets is not None:
                msg = self._JointTargets()
                msg.header.stamp = self.get_clock().now().to_msg()
                msg.position = result.targets.tolist()
                msg.velocity = self._zeros
                msg.kp = self._kp
                msg.kd = self._kd
                msg.torque_ff = result.torque_ff.tolist()
                self._targets_pub.publish(msg)
                self._published += 1
        except Exception as err:  # publish nothing: the bridge damps on its target timeout
            self._error = f"step failed: {type(err).__name__}: {err}"
            self.core.reset()
        self._step_ms.append((time.perf_counter() - t) * 1e3)
        if (
            self._error is not None
            or self._level_now() != self._level
            or now - self._last_diag >= self.params["diagnostics_period_s"]
        ):
            self._publish_diagnostics(now)

    def _level_now(self) -> int:
        if self._error is not None or self._invalid:
            return diagnostics.ERROR  # bad input: an error, as every node of the stack reports it
        return diagnostics.OK if self._status == "ok" and self._guard.warning is None else diagnostics.WARN

    def _publish_diagnostics(self, now: float) -> None:
        self._last_diag = now
        self._guard.judge()  # at each /diagnostics: a percentile per step would cost
        level = self._level = self._level_now()
        error, self._error = self._error, None
        values: dict[str, object] = {"status": self._status, "targets_published": self._published}
        values.update(self._backend_values)
        values["dims_requested_but_ignored"] = self._ignored_now
        posture = getattr(self.core.backend, "posture", None)
        if posture is not None:  # what it walks around now, and how often the floor clearance cut a command
            values["posture"] = f"body_height {posture.body_height:.3f} m, pitch {posture.pitch:.3f} rad"
            values["posture_limited_steps"] = posture.limited_steps
        for k, v in p50_p99_max(np.asarray(self._periods) * 1e3).items():
            values[f"period_{k}_ms"] = v
        if self._step_ms:
            values["step_p50_ms"] = float(np.percentile(self._step_ms, 50))
            values["step_p99_ms"] = float(np.percentile(self._step_ms, 99))
        values.update(self._guard.ages.summary())
        values["stale_speed_capped"] = self._guard.capped
        stale = self._guard.warning
        message = error or (stale if self._status == "ok" and stale else self._status)
        stamp = self.get_clock().now().to_msg()
        array = diagnostics.diagnostic_array(
            f"{NODE_NAME}: policy", level, message, values, stamp, hardware_id="unitree_go2"
        )
        self._diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run_node(
        ControllerNode,
        prog="wtw_controller_node",
        description="low-level locomotion controller: QuadrupedCommand + JointState + Imu -> JointTargets (50 Hz). "
        "Default: the velocity backend with the bundled open Go2 policy; -p run_dir:=<walk-these-ways run> "
        "selects walk-these-ways.",
        argv=args,
    )


if __name__ == "__main__":
    raise SystemExit(main())
