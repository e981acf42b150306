"""Run episodes in closed loop: several environments in lock step, one batched policy call per step.

A job is (task, split, seed, kind). The seed fixes the scene (reset(seed=...)) and, for the scripted
and sub-optimal policies, every decision, so a job's episode is the same whichever slot, batch or
worker runs it. Recorded episodes become `more_common.dataset.Episode`s: the image each command was
decided on, the command as the policy emitted it (contract order), the labels from the
environment's own success check, and the privileged state per step as the extra "state".
The observation after the last decision is not recorded (one image per episode for one transition in ~100):
a time-limited (truncated) episode's last step therefore has no Bellman target, and the RL stream leaves it
out instead of bootstrapping it from its own image (the done rule of more_common.dataset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from more_common.dataset import Episode
from more_sim.config import SimConfig
from more_sim.env import make_env
from more_sim.policies import Policy, SuboptimalBatch
from more_sim.variants import variant_scenario

STATE_FIELDS = ("x", "y", "yaw", "vx", "vy", "wz", "body_height", "pitch")

# How an episode can end (Outcome.end), in the order reports list them. A contact names the role of the thing
# touched: the scene's names with their numbers dropped ("obstacle2" -> "obstacle"), so "contact:target" is the
# gate, bar, ball or box the instruction names, the others are distractors, letter boxes or obstacles.
ENDS = (
    "success",
    "wrong_stop",  # the policy stopped (terminate = 1) where the task's success check fails
    "time_limit",  # truncated: max_episode_steps decisions without a stop
    "contact:target",
    "contact:distractor",
    "contact:box",
    "contact:obstacle",
    "fall",
    "out_of_bounds",
)


@dataclass(frozen=True)
class Job:
    """One episode to run. `target` and `start` ask for a variant of the sampled scene (variants.py)."""

    task: str
    split: str
    seed: int
    suboptimal: bool = False
    target: str = ""  # name of the thing to make the target ("" = the scene's own)
    start: str = "split"  # "split": the split's start heading; "in_view": anywhere the target is in view

    @property
    def episode_id(self) -> str:
        base = f"{self.split}-{self.task}-{'sub' if self.suboptimal else 'exp'}-{self.seed}"
        return base + (f"-{self.target}" if self.target else "") + ("" if self.start == "split" else f"-{self.start}")


@dataclass(frozen=True)
class Outcome:
    job: Job
    success: bool
    steps: int
    failure: str
    truncated: bool
    instruction: str
    mode: str

    @property
    def end(self) -> str:
        return episode_end(self.success, self.failure, self.truncated)


def episode_end(success: bool, failure: str, truncated: bool) -> str:
    """How an episode ended: one of ENDS (a contact with a thing of another name: "contact:<name>")."""
    if success:
        return "success"
    if failure.startswith("contact:"):
        return re.sub(r"\d+$", "", failure)
    if failure:
        return failure
    return "time_limit" if truncated else "wrong_stop"


class EnvPool:
    """Environments kept for reuse across `run_jobs` calls (a MuJoCo renderer costs ~0.5 s to create)."""

    def __init__(self) -> None:
        self._envs: dict[tuple[str, SimConfig], list] = {}

    def get(self, split: str, config: SimConfig, n: int) -> list:
        envs = self._envs.setdefault((split, config), [])
        while len(envs) < n:
            envs.append(make_env("all", split, config))
        return envs[:n]

    def close(self) -> None:
        for envs in self._envs.values():
            for env in envs:
                env.close()
        self._envs.clear()


@dataclass
class _Slot:
    job: Job
    obs: dict
    info: dict
    images: list
    actions: list
    states: list


def run_jobs(
    jobs: Iterable[Job],
    policy: Policy,
    config: SimConfig | None = None,
    batch: int = 8,
    record: bool = False,
    on_done: Callable[[Outcome, Episode | None], None] | None = None,
    pool: EnvPool | None = None,
) -> list[tuple[Outcome, Episode | None]]:
    """Run every job to its end; results come back in job order.

    Environments come from `pool` (and stay there for the next call) or from a private pool that is
    closed at the end.
    """
    config = config or SimConfig()
    jobs = list(jobs)
    if not jobs:
        return []
    own_pool = pool is None
    pool = pool or EnvPool()
    envs = {s: pool.get(s, config, min(batch, len(jobs))) for s in {j.split for j in jobs}}
    results: dict[int, tuple[Outcome, Episode | None]] = {}
    queue = list(enumerate(jobs))
    slots: dict[int, tuple[int, _Slot]] = {}
    n_slots = min(batch, len(jobs))

    def start(slot: int) -> None:
        index, job = queue.pop(0)
        env = envs[job.split][slot]
        obs, info = env.reset(seed=job.seed, options={"task": job.task})
        if job.target or job.start != "split":
            scenario = variant_scenario(info["scenario"], job.target, job.start, job.seed, config)
            obs, info = env.reset(seed=job.seed, options={"scenario": scenario})
        policy.begin(slot, job.seed)
        slots[slot] = (index, _Slot(job, obs, info, [], [], []))

    try:
        for slot in range(n_slots):
            if queue:
                start(slot)
        while slots:
            active = sorted(slots)
            states = [slots[s][1] for s in active]
            actions = np.asarray(policy.act(active, [st.obs for st in states], [st.info for st in states]))
            labels = policy.labels()
            labels = actions if labels is None else np.asarray(labels)
            for slot, st, action, label in zip(active, states, actions, labels, strict=True):
                if record:
                    st.images.append(st.obs["image"])
                    st.actions.append(np.asarray(label, dtype=np.float32))
                    state = st.info["state"]
                    st.states.append([getattr(state, f) for f in STATE_FIELDS])
                env = envs[st.job.split][slot]
                st.obs, _, terminated, truncated, st.info = env.step(action)
                if terminated or truncated:
                    index = slots.pop(slot)[0]
                    mode = policy.mode_of(slot) if isinstance(policy, SuboptimalBatch) else policy.name
                    outcome = Outcome(
                        st.job,
                        bool(st.info["success"]),
                        int(st.info["step"]),
                        st.info["failure"],
                        bool(truncated and not terminated),
                        st.info["instruction"],
                        mode,
                    )
                    episode = _episode(st, outcome) if record else None
                    results[index] = (outcome, episode)
                    if on_done is not None:
                        on_done(outcome, episode)
                    if queue:
                        start(slot)
    finally:
        if own_pool:
            pool.close()
    return [results[i] for i in range(len(jobs))]


def _episode(st: _Slot, outcome: Outcome) -> Episode:
    job = st.job
    return Episode(
        images=np.stack(st.images),
        actions=np.stack(st.actions),
        instruction=outcome.instruction,
        task=job.task,
        success=outcome.success,
        expert=not job.suboptimal,
        split=job.split,
        episode_id=job.episode_id,
        terminated=not outcome.truncated,
        extras={"state": np.asarray(st.states, dtype=np.float32)},
        meta={
            "seed": job.seed,
            "mode": outcome.mode,
            "failure": outcome.failure,
            "scenario": st.info["scenario"].to_dict(),
            "state_fields": list(STATE_FIELDS),
            "embodiment": st.info["embodiment"],
        },
    )


def success_rates(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Per task: successes, episodes, rate, mean steps, falls (episodes that ended with the Go2 down) and
    ends (how many episodes ended each way, Outcome.end; only the ways that occurred, in ENDS order)."""
    out: dict[str, Any] = {}
    for o in outcomes:
        d = out.setdefault(o.job.task, {"successes": 0, "episodes": 0, "steps": 0, "falls": 0, "ends": {}})
        d["successes"] += int(o.success)
        d["episodes"] += 1
        d["steps"] += o.steps
        d["falls"] += int(o.failure == "fall")
        d["ends"][o.end] = d["ends"].get(o.end, 0) + 1
    for d in out.values():
        d["rate"] = d["successes"] / d["episodes"]
        d["mean_steps"] = d.pop("steps") / d["episodes"]
        d["ends"] = dict(sorted(d["ends"].items(), key=lambda kv: _end_order(kv[0])))
    return out


def _end_order(end: str) -> tuple[int, str]:
    return (ENDS.index(end), "") if end in ENDS else (len(ENDS), end)
