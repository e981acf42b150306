"""How the simulated robot moves: a kinematic base (`kinematic`, the default) or the physics Go2 (`go2`).

An embodiment turns one decision's command (already executable: `ActionSpec.for_controller`) into the robot's
motion over `substeps` control steps and reports, after each, the robot's state as the tasks see it (`BaseState`:
position, heading, velocity, body height, pitch), the thing it touched ('' if none) and whether it fell. The
environment (env.py) owns everything else: task progress, success, failures, the time limit.

- `kinematic`: `base_tracker.step_base` (first-order lag towards the command, pose integrated) and the capsule
  footprint of world.py for contacts; it cannot fall. The front camera of scene.py (60 degree vertical field of
  view on a mocap body). This is the embodiment models/demo was trained in.
- `go2` (`more_sim.go2.walker.Go2Walker`): MuJoCo Menagerie's Go2 (PD motors, 15 ms torque lag, 2 ms steps) in
  the six-task world, driven at 50 Hz by the robot's own controller core (wtw_controller, velocity backend, the
  bundled open policy) in this process; contacts are the physics' own, falls are detected; the RealSense D435
  on its head renders the image (go2/world.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from more_common.action_contract import DEFAULT_SPEC, INDEX, TERMINATE, ActionSpec
from more_sim.base_tracker import BaseState, TrackerConfig, step_base
from more_sim.config import SimConfig
from more_sim.tasks import Scenario
from more_sim.world import contact

EMBODIMENTS = ("kinematic", "go2")


@dataclass(frozen=True)
class Substep:
    prev: BaseState
    state: BaseState
    touched: str  # name of a thing the robot touched during this substep ('' if none)
    fallen: bool


class Embodiment(Protocol):
    name: str

    def reset(self, scenario: Scenario) -> BaseState:
        """The robot at the scenario's start, at rest, among its things."""

    def advance(self, command: np.ndarray, substeps: int) -> Iterator[Substep]:
        """Follow `command` for `substeps` control steps (1 / control_hz each); the caller may stop early."""

    def commanded_velocity(self, command: np.ndarray) -> tuple[float, float, float]:
        """The (vx, vy, wz) this embodiment is asked to follow for an executable command (terminate: zero)."""

    def render(self) -> np.ndarray:
        """The robot's camera image now (uint8 H x W x 3)."""

    def close(self) -> None: ...


class KinematicEmbodiment:
    name = "kinematic"

    def __init__(self, config: SimConfig, spec: ActionSpec = DEFAULT_SPEC) -> None:
        self.config = config
        self._tracker = TrackerConfig(time_constant_s=config.time_constant_s, spec=spec)
        self._scene = None
        self._scenario: Scenario | None = None
        self._state = BaseState()

    def reset(self, scenario: Scenario) -> BaseState:
        self._scenario = scenario
        x, y, yaw = scenario.start
        self._state = BaseState(x=x, y=y, yaw=yaw)
        if self._scene is not None:
            self._scene.set_things(scenario.things)
        return self._state

    def advance(self, command: np.ndarray, substeps: int) -> Iterator[Substep]:
        dt = 1.0 / self.config.control_hz
        things = self._scenario.things
        for _ in range(substeps):
            prev, state = self._state, step_base(self._state, command, dt, self._tracker)
            self._state = state
            yield Substep(prev, state, contact(things, state.x, state.y, state.yaw, state.body_height), False)

    def commanded_velocity(self, command: np.ndarray) -> tuple[float, float, float]:
        if command[TERMINATE] >= 0.5:
            return (0.0, 0.0, 0.0)
        return tuple(float(command[INDEX[k]]) for k in ("vx", "vy", "wz"))

    def render(self) -> np.ndarray:
        if self._scene is None:
            from more_sim.scene import SceneRenderer  # imports mujoco: only when images are wanted

            c = self.config
            self._scene = SceneRenderer(c.image_height, c.image_width, c.fovy, c.camera_tilt)
            self._scene.set_things(self._scenario.things)
        return self._scene.render(self._state)

    def close(self) -> None:
        if self._scene is not None:
            self._scene.close()
            self._scene = None


def make_embodiment(config: SimConfig, spec: ActionSpec = DEFAULT_SPEC) -> Embodiment:
    if config.embodiment == "go2":
        from more_sim.go2.walker import Go2Walker  # MuJoCo physics + the controller core: only when asked for

        return Go2Walker(config)
    return KinematicEmbodiment(config, spec)
