"""Data that forces the instruction: renamed targets, wide start headings, DAgger (learner drives, expert labels)."""

import math

import numpy as np
import pytest

from more_sim.cli import main
from more_sim.config import SimConfig
from more_sim.env import make_env
from more_sim.expert import ScriptedExpert
from more_sim.generate import generate, plan_jobs
from more_sim.naming import fully_in_view, nameable
from more_sim.policies import DaggerPolicy, ExpertPolicy, Policy, RandomPolicy
from more_sim.rollout import Job, run_jobs
from more_sim.splits import TASKS
from more_sim.variants import in_view_headings, variant_scenario

CFG = SimConfig(image_height=24, image_width=36)


def _scene(task, seed, split="id"):
    env = make_env(task, split, SimConfig(render_images=False))
    scenario = env.reset(seed=seed)[1]["scenario"]
    env.close()
    return scenario


def test_in_view_start_puts_the_target_anywhere_in_view():
    yaws, offsets = [], []
    for seed in range(40):
        task = TASKS[seed % 6]
        s = _scene(task, seed)
        v = variant_scenario(s, "", "in_view", seed, CFG)
        x, y, yaw = v.start
        assert (x, y) == s.start[:2] and v.things == s.things and v.instruction == s.instruction
        t = v.target_thing
        if math.hypot(t.x, t.y) > 1.5:  # every task's target stands further than that
            assert fully_in_view(t, x, y, yaw, CFG)
        lo, hi = in_view_headings(s, CFG)
        assert not fully_in_view(t, x, y, lo - 0.02, CFG) and not fully_in_view(t, x, y, hi + 0.02, CFG)
        yaws.append(yaw)
        offsets.append(math.atan2(t.y - y, t.x - x) - yaw)
        assert variant_scenario(s, "", "in_view", seed, CFG) == v  # a pure function of scene and seed
    assert max(abs(o) for o in offsets) > 0.35  # the split's own starts keep the target within ~0.25-0.6
    assert np.std(offsets) > 0.15


def test_renamed_target_same_scene_and_start():
    s = _scene("go_to", 3)
    names = [t.name for t in nameable(s)]
    assert len(names) >= 2 and s.target in names
    other = next(n for n in names if n != s.target)
    v = variant_scenario(s, other, "in_view", 3, CFG)
    t = v.thing(other)
    assert v.target == other and v.instruction == f"go to the {t.colour} {t.kind}"
    assert v.start == variant_scenario(s, "", "in_view", 3, CFG).start  # the namings share their first image
    with pytest.raises(ValueError, match="start must be"):
        variant_scenario(s, "", "sideways", 3, CFG)


def test_name_each_jobs_and_expert_succeeds_on_every_naming(tmp_path):
    jobs = plan_jobs(["go_to", "distinguish", "crawl"], 12, "id", 4, 0.0, start="in_view", name_each=True)
    by_scene = {}
    for j in jobs:
        by_scene.setdefault((j.task, j.seed), []).append(j.target)
    assert len(by_scene) == 12
    for (task, seed), targets in by_scene.items():
        expected = 1 if task == "crawl" else len(nameable(_scene(task, seed)))
        assert len(targets) == expected and targets[0] == ""
    assert len({j.episode_id for j in jobs}) == len(jobs)
    results = run_jobs(jobs, ExpertPolicy(), CFG, batch=4)
    assert all(o.success for o, _ in results)
    instructions = {(o.job.seed, o.instruction) for o, _ in results}
    assert len(instructions) == len(jobs)  # each naming its own instruction


class Spy(Policy):
    """Wraps a policy and keeps the infos it was shown."""

    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, inner.name, []

    def begin(self, slot, seed):
        self.inner.begin(slot, seed)

    def act(self, slots, observations, infos):
        self.seen.append(list(infos))
        return self.inner.act(slots, observations, infos)


def test_dagger_learner_drives_and_expert_labels():
    job = Job("go_to", "id", 11)
    learner = Spy(RandomPolicy())
    [(out, ep)] = run_jobs([job], DaggerPolicy(learner, beta=0.0), CFG, batch=1, record=True)
    # the executed commands are the learner's: the episode is the random policy's own
    [(rand_out, rand_ep)] = run_jobs([job], RandomPolicy(), CFG, batch=1, record=True)
    assert out.steps == rand_out.steps and out.success == rand_out.success
    np.testing.assert_array_equal(ep.images, rand_ep.images)
    # the recorded commands are a privileged expert's on the states the learner visited
    expert = ScriptedExpert()
    labels = np.stack([expert.act(infos[0]) for infos in learner.seen]).astype(np.float32)
    np.testing.assert_array_equal(ep.actions, labels)
    assert not np.allclose(ep.actions, rand_ep.actions)
    # beta = 1: the expert drives, the episode is the expert's
    [(exp_out, exp_ep)] = run_jobs([job], DaggerPolicy(RandomPolicy(), beta=1.0), CFG, batch=1, record=True)
    [(ref_out, ref_ep)] = run_jobs([job], ExpertPolicy(), CFG, batch=1, record=True)
    assert exp_out.success and exp_out.steps == ref_out.steps
    np.testing.assert_array_equal(exp_ep.actions, ref_ep.actions)


def test_expert_returns_to_the_goal_when_moved_away():
    env = make_env("go_to", "id", SimConfig(render_images=False))
    _, info = env.reset(seed=2)
    expert, done = ScriptedExpert(), False
    while expert.phase != "finish" and not done:
        _, _, term, trunc, info = env.step(expert.act(info))
        done = term or trunc
    assert expert.phase == "finish"
    state = info["state"]
    moved = {**info, "state": type(state)(x=state.x - 0.5, y=state.y, yaw=state.yaw)}
    cmd = expert.act(moved)
    assert expert.phase == "navigate" and cmd[-1] == 0.0  # no terminate away from the goal
    env.close()


def test_generate_dagger_refuses_bad_input(tmp_path, capsys):
    with pytest.raises(ValueError, match="suboptimal-fraction 0"):
        generate(tmp_path / "a", episodes=2, dagger=str(tmp_path), suboptimal_fraction=0.5, progress=False)
    rc = main(["generate", "--episodes", "2", "--out", str(tmp_path / "b"), "--suboptimal-fraction", "0",
               "--dagger", str(tmp_path / "missing")])  # fmt: skip
    assert rc == 2 and "checkpoint directory" in capsys.readouterr().err
