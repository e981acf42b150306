"""The instruction-swap test: does a policy head for the object its instruction names?

Same scenes, each visible object named in turn; the fraction of decisions that head for the named object,
beside the best score a policy that ignores the instruction can reach (the chance level).

[Decisions] For each scene (the evaluation seeds of `more-sim eval`) and each decision step in `steps`
(the robot having followed the scripted expert to the scene's own target for that many decisions), the
*candidates* are the things the task's instruction can name (go_to: the simple objects, named by colour and
kind; distinguish: the lettered boxes, named by letter) that are fully inside the camera's horizontal field
of view and whose name is unique in the scene. For candidate o the instruction is the scene's own phrasing
with o's words, and the scripted expert, told to go to o, gives the turn command c_o (wz) it would take from
this very state. The policy is shown the same image with each instruction in turn.

[Heads for] A decision heads for the named object o when the policy's turn command is nearer to c_o than to
every other candidate's expert turn (a tie is not a hit). A naming counts only where the turn is informative:
c_o is at least `min_separation` away from every other candidate's turn (two objects both needing a full-rate
turn cannot be told apart by the first command), and a state counts only with at least two such namings.

[Chance] A policy that ignores the instruction sends the same command for every naming in a state, so it
heads for at most one of the m counted namings there: its best possible score is (number of counted states)
/ (number of counted decisions), computed exactly from the scenes (`grounding_chance`). Guessing a candidate
at random scores at most that. The scripted expert, which reads the named target, scores 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from more_common.action_contract import WZ
from more_sim.config import SimConfig
from more_sim.env import make_env
from more_sim.expert import ScriptedExpert
from more_sim.generate import episode_seed
from more_sim.naming import NAMING_TASKS, fully_in_view, nameable, naming_instruction
from more_sim.policies import Policy
from more_sim.splits import SPLIT_SPECS
from more_sim.tasks import Scenario
from more_sim.world import Thing

GROUNDING_TASKS: tuple[str, ...] = NAMING_TASKS  # tasks whose scenes hold several nameable things
DEFAULT_MIN_SEPARATION = 0.1  # [rad/s] expert turns closer than this are one choice for the test


def candidates(scenario: Scenario, x: float, y: float, yaw: float, config: SimConfig) -> list[Thing]:
    """Things the instruction can name unambiguously and the camera sees whole, in scene order."""
    return [t for t in nameable(scenario) if fully_in_view(t, x, y, yaw, config)]


def expert_turn(info: dict, scenario: Scenario) -> float:
    """The turn command (wz) of a fresh scripted expert sent to `scenario`'s target from info's state."""
    return float(ScriptedExpert().act({**info, "scenario": scenario})[WZ])


def counted_mask(turns: Sequence[float], min_separation: float) -> list[bool]:
    """Which namings carry information: their expert turn is >= min_separation from every other one."""
    out = []
    for i, c in enumerate(turns):
        others = [abs(c - d) for j, d in enumerate(turns) if j != i]
        out.append(bool(others) and min(others) >= min_separation)
    return out


def heads_for(turn: float, turns: Sequence[float], named: int) -> bool:
    """The policy's turn is strictly nearer to the named candidate's expert turn than to any other's."""
    d = [abs(turn - c) for c in turns]
    return all(d[named] < d[j] for j in range(len(turns)) if j != named)


@dataclass
class State:
    """One decision state of one scene and the namings that are asked there."""

    task: str
    seed: int
    step: int
    image: np.ndarray
    info: dict
    names: list[str]  # candidate thing names
    instructions: list[str]  # the instruction naming each candidate
    scenarios: list[Scenario]  # the scene with each candidate as the target
    turns: list[float]  # the expert's turn for each candidate
    counted: list[bool]
    policy_turns: list[float] = field(default_factory=list)

    @property
    def informative(self) -> bool:
        return sum(self.counted) >= 2


def collect_states(
    task: str,
    seeds: Sequence[int],
    split: str,
    config: SimConfig,
    steps: Sequence[int] = (0,),
    min_separation: float = DEFAULT_MIN_SEPARATION,
) -> list[State]:
    """Every scene's decision states at the given expert steps (uninformative states included)."""
    spec = SPLIT_SPECS[split]
    env = make_env(task, split, config)
    out: list[State] = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed, options={"task": task})
            expert, k, done = ScriptedExpert(), 0, False
            for step in sorted(set(steps)):
                while k < step and not done:
                    obs, _, terminated, truncated, info = env.step(expert.act(info))
                    k += 1
                    done = terminated or truncated
                if done:
                    break
                scenario, state = info["scenario"], info["state"]
                things = candidates(scenario, state.x, state.y, state.yaw, config)
                scenarios = [
                    replace(scenario, target=t.name, instruction=naming_instruction(scenario, t, spec)) for t in things
                ]
                turns = [expert_turn(info, s) for s in scenarios]
                out.append(
                    State(
                        task=task,
                        seed=seed,
                        step=step,
                        image=obs["image"].copy(),
                        info=info,
                        names=[t.name for t in things],
                        instructions=[s.instruction for s in scenarios],
                        scenarios=scenarios,
                        turns=turns,
                        counted=counted_mask(turns, min_separation),
                    )
                )
    finally:
        env.close()
    return out


def query_policy(policy: Policy, states: Sequence[State], batch: int = 8) -> None:
    """Fill every informative state's `policy_turns`: one first decision per naming, `batch` at a time.

    Each query is a fresh episode for the policy (`begin`), so a stateful policy decides from scratch.
    """
    queries = [(st, i) for st in states if st.informative for i in range(len(st.names))]
    for st in states:
        st.policy_turns = [math.nan] * len(st.names)
    for start in range(0, len(queries), batch):
        chunk = queries[start : start + batch]
        slots = list(range(len(chunk)))
        for slot, (st, i) in zip(slots, chunk, strict=True):
            # a seed per naming: a randomised policy draws afresh for each instruction, as if guessing
            policy.begin(slot, episode_seed(st.seed, st.step * 1000 + i, stream=3))
        observations = [{"image": st.image, "instruction": st.instructions[i]} for st, i in chunk]
        infos = [{**st.info, "scenario": st.scenarios[i], "instruction": st.instructions[i]} for st, i in chunk]
        actions = np.asarray(policy.act(slots, observations, infos), dtype=np.float64)
        for (st, i), action in zip(chunk, actions, strict=True):
            st.policy_turns[i] = float(action[WZ])


def score(states: Sequence[State]) -> dict[str, Any]:
    """Hits, counted decisions, informative states, the rate and the chance level (states / decisions)."""
    hits = decisions = n_states = 0
    for st in states:
        if not st.informative:
            continue
        n_states += 1
        for i, ok in enumerate(st.counted):
            if ok:
                decisions += 1
                hits += int(heads_for(st.policy_turns[i], st.turns, i))
    return {
        "hits": hits,
        "decisions": decisions,
        "states": n_states,
        "states_seen": len(states),
        "rate": hits / decisions if decisions else math.nan,
        "chance": n_states / decisions if decisions else math.nan,
    }


def grounding_seeds(task: str, scenes: int, seed: int, tasks: Sequence[str]) -> list[int]:
    """The seeds `more-sim eval` gives this task's episodes for the same task list (evaluate.eval_jobs)."""
    t = list(tasks).index(task)
    return [episode_seed(seed, t * 1_000_000 + i, stream=1) for i in range(scenes)]


def grounding_test(
    policy: Policy,
    tasks: Sequence[str] = GROUNDING_TASKS,
    scenes_per_task: int = 100,
    split: str = "id",
    seed: int = 0,
    config: SimConfig | None = None,
    batch: int = 8,
    steps: Sequence[int] = (0,),
    min_separation: float = DEFAULT_MIN_SEPARATION,
) -> dict[str, Any]:
    """{"grounding": {task: rate, "all": rate}, "grounding_chance": {...}, "details": {task: score()}}."""
    config = config or SimConfig()
    if policy.image_size is not None and tuple(policy.image_size) != config.image_size:
        config = replace(config, image_height=policy.image_size[0], image_width=policy.image_size[1])
    applicable = [t for t in tasks if t in GROUNDING_TASKS]
    details: dict[str, Any] = {}
    every: list[State] = []
    for task in applicable:
        states = collect_states(task, grounding_seeds(task, scenes_per_task, seed, tasks), split, config, steps,
                                min_separation)  # fmt: skip
        query_policy(policy, states, batch)
        details[task] = score(states)
        every += states
    if applicable:
        details["all"] = score(every)
    return {
        "grounding": {k: v["rate"] for k, v in details.items()},
        "grounding_chance": {k: v["chance"] for k, v in details.items()},
        "details": details,
        "scenes_per_task": scenes_per_task,
        "steps": list(steps),
        "min_separation": min_separation,
        "split": split,
        "seed": seed,
    }
