"""The Gymnasium environment of the six tasks: 12-dim command in, front camera image + instruction out.

[Step] One step is one policy decision (5 Hz by default). The command goes through the action
contract (`ActionSpec.for_controller`: clipped to the controller's ranges, gait snapped, terminate
binarised); the robot's embodiment (embodiment.py: `kinematic`, the base of `base_tracker.step_base`, or
`go2`, the physics Go2 walked by the controller core) then follows it for `substeps` control substeps,
and after every substep the task updates its progress and contact (and, for the Go2, a fall) is checked.

[Episode end]
- terminated, success decided: the command's terminate dim is 1 -> success is the task's geometric
  check on the state at the end of that step;
- terminated, failure: the robot touched a thing (info["failure"] = "contact:<name>"), fell (go2 only,
  "fall") or left the arena (ARENA_RADIUS around the start; "out_of_bounds");
- truncated: the time limit (`config.max_episode_steps` decisions) ended it without a termination; success is
  False. The env applies the limit itself (not gymnasium's TimeLimit, which also sets truncated on a step that
  terminated): terminated and truncated are never both True, and `gymnasium.make(id, config=...)` honours the
  config's limit. (`gymnasium.make(id, max_episode_steps=N)` adds gymnasium's wrapper on top, with its rule.)
Reward is 1.0 at the last step of a successful episode and 0.0 otherwise.

[Observation] {"image": uint8 HxWx3, "instruction": str}. [Info] task, split, instruction, success,
failure, step, the executed command, the embodiment, "velocity" ({"commanded": (vx, vy, wz) the
embodiment was asked to follow, "achieved": the trunk's mean velocity over the decision, heading frame};
None before the first step), and the privileged state the scripted experts use: "state" (BaseState),
"scenario" (Scenario), "progress" (a copy of Progress).

All randomness comes from `self.np_random` (seeded by `reset(seed=...)`), so a seed fixes the
scene, the instruction and, for a deterministic policy, every frame.
"""

from __future__ import annotations

import copy
import math
import string
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from more_common.action_contract import DEFAULT_SPEC, GAIT_NAMES, TERMINATE, ActionSpec
from more_sim.base_tracker import BaseState
from more_sim.config import SimConfig
from more_sim.embodiment import Embodiment, Substep, make_embodiment
from more_sim.geometry import wrap_angle
from more_sim.splits import SPEEDS, TASKS, split_spec
from more_sim.tasks import Progress, Scenario, Style, make_task
from more_sim.world import ARENA_RADIUS

# What an instruction may hold: printable ASCII (the simulator's own words use a few of these; a user's, any).
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + string.punctuation + " "
MAX_INSTRUCTION_LENGTH = 256


def instruction_problem(text: str) -> str | None:
    """Why `text` cannot be an instruction of the observation space (None if it can)."""
    if len(text) > MAX_INSTRUCTION_LENGTH:
        return f"instruction of {len(text)} characters is longer than {MAX_INSTRUCTION_LENGTH}"
    bad = sorted(set(text) - set(INSTRUCTION_CHARSET))
    return f"instruction {text!r} has characters outside printable ASCII: {bad}" if bad else None


class MoreSimEnv(gym.Env):
    """One of the six tasks (or all of them, `task="all"`: each reset picks one uniformly)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 5}

    def __init__(
        self,
        task: str = "go_to",
        split: str = "id",
        config: SimConfig | None = None,
        render_mode: str | None = None,
        spec: ActionSpec = DEFAULT_SPEC,
        robot: Embodiment | None = None,
        **overrides: Any,
    ) -> None:
        self.config = replace(config or SimConfig(), **overrides)
        if task != "all" and task not in TASKS:
            raise ValueError(f"unknown task {task!r}; known: {[*TASKS, 'all']}")
        split_spec(split)  # validates the name
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task_name = task
        self.split = split
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.config.decision_hz}
        self.action_contract = spec
        # an embodiment given from outside (the world node's Go2, whose motors LowCmd drives) replaces the config's
        self.embodiment = robot if robot is not None else make_embodiment(self.config, spec)
        self._tasks = {name: make_task(name, self.config.style_variation) for name in TASKS}
        h, w = self.config.image_size
        self.action_space = spaces.Box(
            low=spec.low_array.astype(np.float32), high=spec.high_array.astype(np.float32), dtype=np.float32
        )
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8),
                "instruction": spaces.Text(MAX_INSTRUCTION_LENGTH, charset=INSTRUCTION_CHARSET),
            }
        )
        self._state = BaseState()
        self._velocity: dict[str, tuple[float, float, float]] | None = None
        self._scenario: Scenario | None = None
        self._progress = Progress()
        self._steps = 0
        self._done = True
        self._image = np.zeros((h, w, 3), dtype=np.uint8)

    # -- gymnasium API -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task", "split", "scenario", "instruction", "style"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}")
        if options.get("scenario") is not None:
            scenario = options["scenario"]
            if not isinstance(scenario, Scenario):
                scenario = Scenario.from_dict(scenario)
        else:
            task = options.get("task") or (
                TASKS[int(self.np_random.integers(len(TASKS)))] if self.task_name == "all" else self.task_name
            )
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r} in reset options; known: {list(TASKS)}")
            split = options.get("split", self.split)
            style = options.get("style") or self._sample_style()
            scenario = self._tasks[task].sample(self.np_random, split_spec(split), style)
        if options.get("instruction"):
            problem = instruction_problem(str(options["instruction"]))
            if problem:  # the observation would leave observation_space
                raise ValueError(f"reset options: {problem}")
            scenario = replace(scenario, instruction=str(options["instruction"]))
        self._scenario = scenario
        self._state = self.embodiment.reset(scenario)
        self._progress = Progress()
        self._steps = 0
        self._done = False
        self._last_command = None
        self._velocity = None
        return self._observe(), self._info(success=False, failure="")

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        command = self.executable(action)
        return self.finish_decision(command, self.embodiment.advance(command, self.config.substeps))

    def executable(self, action: Any) -> np.ndarray:
        """The action as the controller takes it (the action contract's clip, snap and binarised terminate)."""
        if self._scenario is None or self._done:
            raise RuntimeError("call reset() before step() (the episode is over or never started)")
        return self.action_contract.for_controller(np.asarray(action, dtype=np.float64))

    def finish_decision(self, command: np.ndarray, substeps: Iterable[Substep]) -> tuple[dict, float, bool, bool, dict]:
        """One decision's outcome from the robot's substeps under `command` (what `step` returns, the time limit
        included). `step` passes its embodiment's substeps; a simulator whose physics another process drives (the
        world node's Go2 under LowCmd) records them as they happen and passes them here at the decision's end."""
        if self._scenario is None or self._done:
            raise RuntimeError("call reset() before step() (the episode is over or never started)")
        self._last_command = command
        scenario, task = self._scenario, self._tasks[self._scenario.task]
        start = state = self._state
        fallen = False
        substeps_done = 0
        for sub in substeps:
            state = sub.state
            substeps_done += 1
            task.update(scenario, self._progress, sub.prev, state)
            if sub.touched:
                self._progress.contact = sub.touched
                break
            if sub.fallen:
                fallen = True
                break
        self._state = state
        self._steps += 1
        self._velocity = {
            "commanded": self.embodiment.commanded_velocity(command),
            "achieved": mean_velocity(start, state, substeps_done / self.config.control_hz),
        }
        sx, sy, _ = scenario.start
        failure = ""
        if self._progress.contact:
            failure = f"contact:{self._progress.contact}"
        elif fallen:
            failure = "fall"
        elif math.hypot(state.x - sx, state.y - sy) > ARENA_RADIUS:
            failure = "out_of_bounds"
        terminate = command[TERMINATE] >= 0.5
        success = terminate and not failure and task.success(scenario, self._progress, state)
        terminated = bool(terminate or failure)
        truncated = not terminated and self._steps >= self.config.max_episode_steps
        self._done = terminated or truncated
        return self._observe(), float(success), terminated, truncated, self._info(success=success, failure=failure)

    def render(self) -> np.ndarray | None:
        return self._image.copy() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self.embodiment.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _sample_style(self) -> Style:
        if not self.config.style_variation:
            return Style()
        speeds = tuple(SPEEDS)
        return Style(
            speed=speeds[int(self.np_random.integers(len(speeds)))],
            gait=GAIT_NAMES[int(self.np_random.integers(len(GAIT_NAMES)))],
        )

    def _observe(self) -> dict[str, Any]:
        if self.config.render_images:
            self._image = self.embodiment.render()
        else:
            self._image = np.zeros_like(self._image)  # a fresh array per step, as gymnasium expects
        return {"image": self._image, "instruction": self._scenario.instruction}

    def _info(self, success: bool, failure: str) -> dict[str, Any]:
        s = self._scenario
        return {
            "task": s.task,
            "split": s.split,
            "instruction": s.instruction,
            "success": bool(success),
            "failure": failure,
            "step": self._steps,
            "command": None if self._last_command is None else self._last_command.copy(),
            "embodiment": self.embodiment.name,
            "velocity": self._velocity,
            "state": self._state,
            "scenario": s,
            "progress": copy.deepcopy(self._progress),
        }

    # -- read-only access for tools (ROS node, tests) -----------------------------------------------
    @property
    def state(self) -> BaseState:
        return self._state

    @property
    def scenario(self) -> Scenario | None:
        return self._scenario

    @property
    def progress(self) -> Progress:
        return self._progress

    @property
    def steps(self) -> int:
        return self._steps


def mean_velocity(start: BaseState, end: BaseState, seconds: float) -> tuple[float, float, float]:
    """(vx, vy, wz): the mean velocity between two poses, in the frame of the mean heading."""
    if seconds <= 0:
        return (0.0, 0.0, 0.0)
    dyaw = wrap_angle(end.yaw - start.yaw)
    mid = start.yaw + 0.5 * dyaw
    c, s = math.cos(mid), math.sin(mid)
    dx, dy = end.x - start.x, end.y - start.y
    return ((c * dx + s * dy) / seconds, (-s * dx + c * dy) / seconds, dyaw / seconds)


def make_env(task: str = "go_to", split: str = "id", config: SimConfig | None = None, **kwargs: Any) -> gym.Env:
    """The environment (what gymnasium.make gives for the registered ids; it applies its time limit itself)."""
    return MoreSimEnv(task=task, split=split, config=config, **kwargs)
