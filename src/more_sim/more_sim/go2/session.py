"""Episodes back to back on the physics Go2 whose motors another process drives: the world node's functional core.

Pure Python (no rclpy). The world node applies each LowCmd to the body's motors and calls `advance(n)` with the
physics steps the wall clock allows (times its real_time_factor); this class steps the physics, records what the
tasks need after every control period (50 Hz: the trunk's true pose and velocity, the first thing touched, a
fall) and at every decision period (5 Hz simulated) hands the recorded substeps to the environment's own rules
(`MoreSimEnv.finish_decision`: progress, contact, fall, out of bounds, success at terminate) with the VLA command
that was in force during that decision, then renders the head camera: one `TickResult` per decision. Simulated
time is the only clock here: decision period, reset delay and the time limit are in simulated seconds.

Episode boundaries with a walking robot: the bridge and the controller keep running across episodes. An episode
starts only while the robot is `ready` (the node sets it from the bridge's state: ACTIVE); it then places the
robot standing (the walking policy's default pose, at rest) at the scenario's start among the scenario's things.
After an episode ends, its final result is repeated for `reset_delay_decisions` decisions (listeners see the
outcome) while the robot goes on under its controller; then the next episode starts when the robot is ready.
If it is not (the bridge damped, e.g. after a fall), the scene is cleared and the robot is laid down upright in
its folded pose where it is, so the bridge can stand it up again; the episode starts once it is ready.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from more_common.action_contract import stand_command
from more_sim.base_tracker import BaseState
from more_sim.config import SimConfig
from more_sim.embodiment import Substep
from more_sim.env import MoreSimEnv, mean_velocity
from more_sim.go2.world import Go2World
from more_sim.session import TickResult, tick_result
from more_sim.tasks import Scenario

LYING_JOINT_POS: tuple[float, ...] = (0.0, 1.2, -2.7) * 4  # legs folded (the Go2 lying down), SDK order


class ExternalGo2:
    """The `go2` embodiment whose motors are driven from outside this process (LowCmd): no controller here."""

    name = "go2"

    def __init__(self, world: Go2World) -> None:
        self.world = world

    def reset(self, scenario: Scenario) -> BaseState:
        x, y, yaw = scenario.start
        self.world.set_things(scenario.things)
        self.world.place(x, y, yaw)
        return self.world.state()

    def advance(self, command: np.ndarray, substeps: int):  # noqa: ANN201
        raise RuntimeError("this Go2's motors are driven from outside: record its substeps and call finish_decision")

    def commanded_velocity(self, command: np.ndarray) -> tuple[float, float, float]:
        if command[11] >= 0.5:
            return (0.0, 0.0, 0.0)
        return (float(command[0]), float(command[1]), float(command[2]))

    def render(self) -> np.ndarray:
        return self.world.render_head()

    def close(self) -> None:
        self.world.close()


class Go2Session:
    def __init__(
        self,
        task: str = "go_to",
        split: str = "id",
        seed: int = 0,
        instruction: str = "",
        config: SimConfig | None = None,
        reset_delay_decisions: int = 5,
        auto_reset: bool = True,
        timestep: float = 0.002,
        actuator_lag_s: float = 0.015,
        view_size: tuple[int, int] = (240, 320),
        visual: bool = False,
    ) -> None:
        self.config = c = replace(config or SimConfig(), embodiment="go2")
        self.world = Go2World(c.image_height, c.image_width, timestep, actuator_lag_s, visual, view_size)
        self.body = self.world.body
        self.env = MoreSimEnv(task, split, c, robot=ExternalGo2(self.world))
        per_control = 1.0 / c.control_hz / self.body.timestep
        if abs(per_control - round(per_control)) > 1e-6 or round(per_control) < 1:
            raise ValueError(f"control period 1/{c.control_hz} s is not a whole number of {timestep} s steps")
        self.steps_per_control = round(per_control)
        self.controls_per_decision = c.substeps
        self.seed, self.instruction = seed, instruction
        self.reset_delay_decisions, self.auto_reset = reset_delay_decisions, auto_reset
        self.episode = -1
        self.ready = False  # the robot may walk (its bridge is ACTIVE)
        self.want_view = False  # render the third-person view with each result
        self.phase = "idle"  # idle (no episode yet, or waiting for the robot) | running | ended
        self._command: np.ndarray | None = None  # newest VLA command (None: none fresh -> stand)
        self._latched = stand_command()  # the command in force during the current decision
        self._phys = 0  # physics steps into the current control period
        self._controls = 0  # control periods into the current decision
        self._subs: list[Substep] = []
        self._touched = ""
        self._state = self.world.state()
        self._last: TickResult | None = None
        self._wait = 0
        self._pending_reset = False
        self._laid_down = False

    @property
    def decision_period_s(self) -> float:
        return self.controls_per_decision * self.steps_per_control * self.body.timestep

    def set_command(self, command: np.ndarray | None) -> None:
        """The newest VLA command (12 floats, contract order; None when none is fresh: the stand command)."""
        self._command = None if command is None else np.asarray(command, dtype=np.float64)

    def request_reset(self) -> None:
        """Start the next episode at the next decision boundary (once the robot is ready)."""
        self._pending_reset = True

    def advance(self, n: int) -> list[TickResult]:
        """`n` physics steps under the motors' current command; the results of the decisions that ended."""
        out: list[TickResult] = []
        for _ in range(n):
            self.body.step(1)
            self._phys += 1
            if self.phase == "running" and not self._touched:
                self._touched = self.world.touched()
            if self._phys == self.steps_per_control:
                self._phys = 0
                self._control_boundary(out)
        return out

    # -- internals ------------------------------------------------------------------------------------
    def _control_boundary(self, out: list[TickResult]) -> None:
        if self.phase == "running":
            dt = self.steps_per_control * self.body.timestep
            pose = self.world.state()
            state = self.world.state(mean_velocity(self._state, pose, dt))
            self._subs.append(Substep(self._state, state, self._touched, self.world.fallen()))
            self._state, self._touched = state, ""
        self._controls += 1
        if self._controls < self.controls_per_decision:
            return
        self._controls = 0
        if self.phase == "running":
            self._decide(out)
        elif self.phase == "ended":
            self._wait += 1
            if self._pending_reset or (self.auto_reset and self._wait >= self.reset_delay_decisions):
                self._try_start(out)
            else:
                out.append(self._last)
        else:
            self._try_start(out)

    def _decide(self, out: list[TickResult]) -> None:
        env = self.env
        obs, reward, terminated, truncated, info = env.finish_decision(self._latched, self._subs)
        self._subs = []
        result = self._result(obs, info, reward, terminated, truncated, new_episode=False)
        if terminated or truncated:
            self.phase, self._wait = "ended", 0
        self._latched = self._next_command()
        self._last = result
        out.append(result)

    def _next_command(self) -> np.ndarray:
        if self._command is None:
            return stand_command()
        return self.env.action_contract.for_controller(self._command)

    def _try_start(self, out: list[TickResult]) -> None:
        if not self.ready:
            if not self._laid_down:  # the bridge has to stand it up again: upright, legs folded, nothing around
                self.world.set_things(())
                s = self.world.state()
                self.world.place(s.x, s.y, s.yaw, LYING_JOINT_POS)
                self._laid_down = True
            self.phase = "idle"
            return
        self.episode += 1
        options = {"instruction": self.instruction} if self.instruction else None
        obs, info = self.env.reset(seed=self.seed + self.episode, options=options)
        self._state = info["state"]
        self._subs, self._touched = [], ""
        self._command, self._latched = None, stand_command()  # nothing from the last episode carries over
        self.phase, self._pending_reset, self._laid_down = "running", False, False
        self._phys = 0
        self._last = self._result(obs, info, 0.0, False, False, new_episode=True)
        out.append(self._last)

    def _result(self, obs: dict, info: dict, reward: float, terminated: bool, truncated: bool, new_episode: bool):
        view = self.world.render_view() if self.want_view else None
        return tick_result(obs, info, reward, terminated, truncated, self.episode, new_episode, view)

    def close(self) -> None:
        self.env.close()
