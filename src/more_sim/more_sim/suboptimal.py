"""The sub-optimal data generator, in the spirit of QUARD-Auto: plausible but flawed behaviour.

Each episode draws one mode (weights in MODE_WEIGHTS) from its own seeded generator:
- "noisy": the expert's commands plus temporally correlated noise (Ornstein-Uhlenbeck, 0.6 s
  correlation) on vx, vy, wz and small noise on body height and pitch; sometimes still succeeds;
- "wrong_target": the expert heading for a wrong thing (another box, another object, an obstacle),
  crossing a gate/bar line beside its opening, skipping the crouch or the dump, then terminating;
- "early_stop": the expert, but terminate 1-2.5 m (path length) short of its goal point;
- "late_stop": the expert without its terminate: it stands at the goal until the time limit, or
  walks on for 1-3 s first and terminates then (often into the thing it reached);
- "random": smooth random commands (OU process), terminate with 3 % probability per step.
Success is never assumed: episodes are labelled by the environment's own success check.
"""

from __future__ import annotations

import math

import numpy as np

from more_common.action_contract import GAIT_NAMES, GAITS, INDEX, TERMINATE, stand_command
from more_sim.expert import ExpertVariant, ScriptedExpert
from more_sim.tasks import Scenario
from more_sim.world import Thing

MODE_WEIGHTS: dict[str, float] = {
    "noisy": 0.3,
    "wrong_target": 0.25,
    "early_stop": 0.15,
    "late_stop": 0.15,
    "random": 0.15,
}
MODES = tuple(MODE_WEIGHTS)


class _OU:
    """Ornstein-Uhlenbeck noise sampled at the decision rate (stationary std `sigma`)."""

    def __init__(self, rng: np.random.Generator, sigma: np.ndarray, dt: float, tau: float = 0.6) -> None:
        self.rng, self.sigma = rng, np.asarray(sigma, dtype=np.float64)
        self.a = math.exp(-dt / tau)
        self.x = rng.normal(size=self.sigma.shape) * self.sigma

    def __call__(self) -> np.ndarray:
        self.x = self.a * self.x + math.sqrt(1 - self.a**2) * self.sigma * self.rng.normal(size=self.sigma.shape)
        return self.x


def _wrong_thing(scenario: Scenario, rng: np.random.Generator) -> Thing | None:
    others = [t for t in scenario.things if t.name != scenario.target]
    return others[int(rng.integers(len(others)))] if others else None


class SuboptimalPolicy:
    """One flawed episode per `reset`; `act(info)` like ScriptedExpert."""

    def __init__(self, seed: int, mode: str | None = None, decision_dt: float = 0.2) -> None:
        self.rng = np.random.default_rng([seed, 0x5AB0])
        names = list(MODE_WEIGHTS)
        p = np.array([MODE_WEIGHTS[n] for n in names])
        self.mode = mode or names[int(self.rng.choice(len(names), p=p / p.sum()))]
        if self.mode not in MODE_WEIGHTS:
            raise ValueError(f"unknown sub-optimal mode {self.mode!r}; known: {list(MODES)}")
        self.dt = decision_dt
        self._expert: ScriptedExpert | None = None
        self._scenario: Scenario | None = None
        self._step = 0
        self._stop_short = 0.0
        self._overrun = -1
        self._noise = _OU(self.rng, np.array([0.25, 0.15, 0.5, 0.05, 0.08]), decision_dt)
        self._random_gait = GAIT_NAMES[int(self.rng.integers(len(GAIT_NAMES)))]

    def _setup(self, scenario: Scenario) -> None:
        variant = ExpertVariant()
        if self.mode == "wrong_target":
            wrong = _wrong_thing(scenario, self.rng)
            if scenario.task in ("go_through", "crawl") and (self.rng.uniform() < 0.5 or wrong is None):
                width = scenario.target_thing.width
                variant.lateral_offset = float(self.rng.choice([-1, 1]) * (width / 2 + self.rng.uniform(0.5, 0.9)))
            elif scenario.task in ("crawl", "unload") and self.rng.uniform() < 0.6:
                variant.skip_action = True
            else:
                variant.target = wrong
                if wrong is None:  # nothing else in the scene: skip the task's action instead
                    variant.skip_action = True
        elif self.mode == "late_stop":
            variant.never_terminate = True
            if self.rng.uniform() < 0.5:
                self._overrun = int(self.rng.integers(5, 16))
        self._expert = ScriptedExpert(variant)
        self._stop_short = float(self.rng.uniform(1.0, 2.5))
        self._scenario = scenario

    def act(self, info: dict) -> np.ndarray:
        scenario: Scenario = info["scenario"]
        if scenario is not self._scenario:
            self._setup(scenario)
            self._step = 0
        self._step += 1
        if self.mode == "random":
            return self._random()
        cmd = self._expert.act(info)
        if self.mode == "noisy":
            n = self._noise()
            for k, name in enumerate(("vx", "vy", "wz", "body_height", "pitch")):
                cmd[INDEX[name]] += n[k]
        elif self.mode == "early_stop" and self._expert.remaining < self._stop_short:
            cmd = stand_command()
            cmd[TERMINATE] = 1.0
        elif self.mode == "late_stop" and self._overrun >= 0 and self._expert.phase == "finish":
            # Walk on past the goal for a while, then terminate.
            cmd[INDEX["vx"]] = 0.5
            self._overrun -= 1
            if self._overrun <= 0:
                cmd[TERMINATE] = 1.0
        return cmd

    def _random(self) -> np.ndarray:
        n = self._noise()
        cmd = stand_command()
        cmd[INDEX["vx"]] = 0.3 + 2.0 * n[0]
        cmd[INDEX["vy"]] = n[1]
        cmd[INDEX["wz"]] = 1.5 * n[2]
        cmd[INDEX["body_height"]] = 2.0 * n[3]
        cmd[INDEX["pitch"]] = 2.0 * n[4]
        cmd[INDEX["gait_phase"] : INDEX["gait_bound"] + 1] = GAITS[self._random_gait]
        cmd[TERMINATE] = 1.0 if self.rng.uniform() < 0.03 else 0.0
        return cmd
