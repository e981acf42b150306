"""Scripted experts solve every task; random and flawed behaviour mostly does not.

Statistics: 50 episodes per task in distribution and 25 out of distribution, fixed seeds (so the
test is deterministic). If every episode succeeds, the one-sided 95% Clopper-Pearson lower bound on
the success rate is 0.942 for n = 50 (0.887 for 25); over 200 episodes per task and split (measured
for docs/simulator.md) it is 0.985. The assertion is the issue's >= 95% on the observed rate.
"""

import collections

import numpy as np
import pytest

from more_common.action_contract import INDEX
from more_sim.config import SimConfig
from more_sim.expert import STRAFE_SPEED, STRAFE_VY
from more_sim.naming import camera_bearing, half_fov_x
from more_sim.policies import ExpertPolicy, RandomPolicy, SuboptimalBatch
from more_sim.rollout import Job, run_jobs, success_rates
from more_sim.splits import TASKS
from more_sim.suboptimal import MODES

FAST = SimConfig(render_images=False)  # experts use privileged state only


@pytest.mark.parametrize(("split", "n"), [("id", 50), ("ood", 25)])
def test_expert_succeeds_on_every_task(split, n):
    jobs = [Job(task, split, seed=10_000 + i) for task in TASKS for i in range(n)]
    results = run_jobs(jobs, ExpertPolicy(), FAST, batch=12)
    rates = success_rates([o for o, _ in results])
    failures = collections.Counter((o.job.task, o.failure) for o, _ in results if not o.success)
    for task in TASKS:
        assert rates[task]["episodes"] == n
        assert rates[task]["rate"] >= 0.95, f"{task}: {rates[task]} failures {failures}"


def test_random_policy_almost_never_succeeds():
    jobs = [Job(task, "id", seed=20_000 + i) for task in TASKS for i in range(30)]
    rates = success_rates([o for o, _ in run_jobs(jobs, RandomPolicy(), FAST, batch=12)])
    for task in TASKS:
        assert rates[task]["rate"] <= 0.05, (task, rates[task])


def test_suboptimal_generator_is_worse_and_labelled_by_the_sim():
    jobs = [Job(task, "id", seed=30_000 + i, suboptimal=True) for task in TASKS for i in range(20)]
    results = run_jobs(jobs, SuboptimalBatch(), FAST, batch=12)
    outcomes = [o for o, _ in results]
    modes = collections.Counter(o.mode for o in outcomes)
    assert set(modes) == set(MODES)
    overall = sum(o.success for o in outcomes) / len(outcomes)
    assert 0.02 < overall < 0.5  # mostly failures, some lucky successes (QUARD-Auto is mostly failed)
    by_mode = collections.defaultdict(list)
    for o in outcomes:
        by_mode[o.mode].append(o.success)
    # Stopping >= 1 m of path short of the goal point: >= 1.6 m from a target's surface (reach needs 0.9),
    # or still >= 0.1 m before a gate or bar line.
    assert sum(by_mode["early_stop"]) == 0
    assert sum(by_mode["wrong_target"]) == 0  # the wrong thing, the wrong side of the posts, no crouch/dump


def test_each_suboptimal_mode_can_be_forced():
    for mode in MODES:
        jobs = [Job("crawl", "id", seed=40_000 + i, suboptimal=True) for i in range(6)]
        policy = SuboptimalBatch(mode)
        outcomes = [o for o, _ in run_jobs(jobs, policy, FAST, batch=3)]
        assert {o.mode for o in outcomes} == {mode}
        if mode in ("wrong_target", "early_stop", "random"):
            assert not any(o.success for o in outcomes), mode


def test_expert_follows_the_instructed_style():
    from more_common.action_contract import GAITS, INDEX
    from more_sim.env import make_env
    from more_sim.expert import ScriptedExpert

    env = make_env("go_to", "id", SimConfig(render_images=False, style_variation=True))
    seen = set()
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        style = info["scenario"].style
        assert obs["instruction"].endswith(f" {style.speed} with a {style.gait} gait")
        expert, done, top_speed = ScriptedExpert(), False, 0.0
        while not done:
            cmd = expert.act(info)
            assert tuple(cmd[INDEX["gait_phase"] : INDEX["gait_bound"] + 1]) == GAITS[style.gait]
            top_speed = max(top_speed, cmd[INDEX["vx"]])
            obs, _, terminated, truncated, info = env.step(cmd)
            done = terminated or truncated
        assert info["success"]
        # The instructed speed caps vx; near the goal vx <= remaining distance / 1 s lowers the peak on short paths.
        v = {"slowly": 0.35, "normally": 0.6, "quickly": 0.85}[style.speed]
        assert 0.7 * v <= top_speed <= v + 1e-9
        seen.add((style.speed, style.gait))
    assert len(seen) > 4


class _ViewCounter(ExpertPolicy):
    """The expert, counting the decisions whose image would not show the target (camera bearing outside the view)
    and checking every command it gives."""

    def __init__(self, strafe: bool, config: SimConfig) -> None:
        super().__init__(strafe=strafe)
        self.half = half_fov_x(config)
        self.decisions = self.out_of_view = 0
        self.commands: list = []

    def act(self, slots, observations, infos):
        for info in infos:
            state, target = info["state"], info["scenario"].target_thing
            bearing, _ = camera_bearing(target, state.x, state.y, state.yaw)
            self.decisions += 1
            self.out_of_view += not abs(bearing) <= self.half  # nan (behind the camera) counts as out of view
        commands = super().act(slots, observations, infos)
        self.commands.extend(commands)
        return commands


@pytest.mark.parametrize("task", ["go_avoid", "go_to", "distinguish", "unload"])
def test_the_strafing_expert_solves_the_reach_tasks_and_keeps_the_target_in_view(task):
    jobs = [Job(task, "id", seed=50_000 + i) for i in range(20)]
    turning, strafing = _ViewCounter(False, FAST), _ViewCounter(True, FAST)
    turned = success_rates([o for o, _ in run_jobs(jobs, turning, FAST, batch=10)])[task]
    strafed = success_rates([o for o, _ in run_jobs(jobs, strafing, FAST, batch=10)])[task]
    assert strafed["rate"] >= 0.95 and turned["rate"] >= 0.95, (strafed, turned)
    # the turning expert's go_avoid path takes the ball out of view (measured: ~40% of decisions on this camera)
    if task == "go_avoid":
        assert turning.out_of_view > 0.25 * turning.decisions
    # out of view only while it first turns to the target from the split's start heading
    assert strafing.out_of_view <= 0.05 * strafing.decisions, (strafing.out_of_view, strafing.decisions)
    commands = np.asarray(strafing.commands)
    assert np.all(commands[:, INDEX["vx"]] >= 0.0) and np.all(np.abs(commands[:, INDEX["vy"]]) <= STRAFE_VY + 1e-9)
    assert np.all(np.hypot(commands[:, INDEX["vx"]], commands[:, INDEX["vy"]]) <= STRAFE_SPEED + 1e-9)
    assert np.any(np.abs(commands[:, INDEX["vy"]]) > 0.05)  # it does walk sideways


def test_the_strafing_expert_crosses_gates_as_the_turning_one():
    """Gates and bars are crossed head-on (the straight run-up): strafing changes nothing there."""
    jobs = [Job(task, "id", seed=60_000 + i) for task in ("go_through", "crawl") for i in range(6)]
    turning = run_jobs(jobs, ExpertPolicy(), FAST, batch=12, record=True)
    strafing = run_jobs(jobs, ExpertPolicy(strafe=True), FAST, batch=12, record=True)
    for (a, ea), (b, eb) in zip(turning, strafing, strict=True):
        assert a.success and b.success and np.array_equal(ea.actions, eb.actions)


def test_the_expert_crouches_only_around_the_bar():
    """Crawl: body height CRAWL_HEIGHT while the base is between CRAWL_LEAD before the bar's line and CRAWL_CLEAR past
    it, the nominal height elsewhere (a long crouch outlasts the Go2's time limit, docs/simulator.md)."""
    from more_sim.env import make_env
    from more_sim.expert import CRAWL_CLEAR, CRAWL_HEIGHT, CRAWL_LEAD, ScriptedExpert
    from more_sim.world import crossing_coordinates

    env = make_env("crawl", "id", FAST)
    seen = {"before": set(), "under": set(), "after": set()}
    for seed in range(5):
        _, info = env.reset(seed=30_000 + seed)
        expert, done = ScriptedExpert(), False
        while not done:
            state, bar = info["state"], info["scenario"].target_thing
            along, _ = crossing_coordinates(bar, state.x, state.y)
            command = expert.act(info)
            where = "before" if along < -CRAWL_LEAD else ("under" if along < CRAWL_CLEAR else "after")
            seen[where].add(round(float(command[INDEX["body_height"]]), 6))
            _, _, terminated, truncated, info = env.step(command)
            done = terminated or truncated
        assert info["success"], seed
    assert seen == {"before": {0.0}, "under": {CRAWL_HEIGHT}, "after": {0.0}}
