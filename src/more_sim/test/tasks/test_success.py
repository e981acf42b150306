"""Each task's geometric success check on hand-built states (numbers derived in the comments)."""

import math

import numpy as np
import pytest

from more_sim.base_tracker import BaseState
from more_sim.splits import SPLIT_SPECS, TASKS
from more_sim.tasks import Progress, Scenario, Style, make_task
from more_sim.world import Thing, contact


def scenario(task, things, target="target"):
    return Scenario(task, "id", "test", tuple(things), target)


def at(x, y=0.0, yaw=0.0, **kw):
    return BaseState(x=x, y=y, yaw=yaw, **kw)


# -- reach tasks -----------------------------------------------------------------------------------
# A ball of radius 0.2 at (2, 0): from (1.0, 0) its surface is 0.8 away (<= REACH 0.9), from (0.85, 0)
# 0.95 away (too far). FACING is 0.6 rad.


def test_go_to_reach_distance_and_facing():
    task = make_task("go_to")
    sc = scenario("go_to", [Thing("target", "ball", 2.0, 0.0, colour="red")])
    assert task.success(sc, Progress(), at(1.0))
    assert not task.success(sc, Progress(), at(0.85))
    assert task.success(sc, Progress(), at(1.0, yaw=0.55))
    assert not task.success(sc, Progress(), at(1.0, yaw=0.65))  # looking past it
    assert not task.success(sc, Progress(), at(1.0, yaw=math.pi))


def test_go_to_fails_when_a_distractor_is_nearer():
    task = make_task("go_to")
    things = [Thing("target", "ball", 2.0, 0.0, colour="red"), Thing("d1", "cube", 1.6, 0.8, colour="blue")]
    # From (1.2, 0.4): target surface sqrt(0.8^2 + 0.4^2) - 0.2 = 0.694; the cube's surface is
    # |(0.4, 0.4)| minus its 0.2 half size in each axis = |(0.2, 0.2)| = 0.283: nearer, so failure.
    assert not task.success(scenario("go_to", things), Progress(), at(1.2, 0.4, yaw=math.atan2(-0.4, 0.8)))
    # From (1.2, -0.4) the cube is |(0.2, 1.0)| = 1.02 away: the target is the nearest, success.
    assert task.success(scenario("go_to", things), Progress(), at(1.2, -0.4, yaw=math.atan2(0.4, 0.8)))


def test_distinguish_needs_the_named_box():
    task = make_task("distinguish")
    things = [
        Thing("target", "letter_box", 2.0, 0.0, math.pi, letter="A", colour="tan"),
        Thing("box1", "letter_box", 2.0, 1.5, math.pi, letter="B", colour="tan"),
    ]
    sc = scenario("distinguish", things)
    # Half size 0.25: from (1.0, 0) the target's face is 0.75 away.
    assert task.success(sc, Progress(), at(1.0))
    assert not task.success(sc, Progress(), at(1.0, 1.5))  # in front of the B box
    assert not task.success(sc, Progress(), at(0.5))  # 1.25 away


def test_go_avoid_fails_after_contact():
    task = make_task("go_avoid")
    sc = scenario("go_avoid", [Thing("target", "ball", 2.0, 0.0, colour="red")])
    assert task.success(sc, Progress(), at(1.0))
    assert not task.success(sc, Progress(contact="obstacle0"), at(1.0))


def test_unload_needs_the_dump():
    task = make_task("unload")
    sc = scenario("unload", [Thing("target", "container", 2.0, 0.0, math.pi, colour="red")])
    # The container's half extent along x is 0.30: from (1.0, 0) its wall is 0.7 away.
    progress = Progress()
    assert not task.success(sc, progress, at(1.0))
    task.update(sc, progress, at(1.0), at(1.0, pitch=0.2))  # below DUMP_PITCH 0.25
    assert not progress.dumped
    task.update(sc, progress, at(0.0), at(0.0, pitch=0.3))  # pitched, but 1.7 m away
    assert not progress.dumped
    task.update(sc, progress, at(1.0), at(1.0, pitch=0.3))
    assert progress.dumped
    assert task.success(sc, progress, at(1.0))


# -- crossing tasks --------------------------------------------------------------------------------
GATE = Thing("target", "gate", 2.0, 0.0, 0.0, colour="red", width=1.0)


def test_go_through_crossing_inside_the_opening():
    task = make_task("go_through")
    sc = scenario("go_through", [GATE])
    p = Progress()
    task.update(sc, p, at(1.9, 0.1), at(2.05, 0.1))
    assert p.passed
    assert not task.success(sc, p, at(2.3, 0.1))  # 0.3 past the line, needs 0.4
    assert task.success(sc, p, at(2.5, 0.1))
    task.update(sc, p, at(2.05, 0.1), at(1.95, 0.1))  # walked back
    assert not p.passed


def test_go_through_around_the_post_does_not_count():
    task = make_task("go_through")
    sc = scenario("go_through", [GATE])
    p = Progress()
    task.update(sc, p, at(1.9, 0.9), at(2.1, 0.9))  # beyond the post at y = 0.55
    assert not p.passed
    assert not task.success(sc, p, at(3.0, 0.9))


def test_gate_posts_are_touched_but_the_opening_is_free():
    # Posts (half width 0.05) at y = +-0.55; the capsule is 0.16 wide each side.
    assert contact((GATE,), 2.0, 0.0, 0.0, 0.0) == ""
    assert contact((GATE,), 2.0, 0.3, 0.0, 0.0) == ""  # 0.55 - 0.05 - 0.3 = 0.2 > 0.16
    assert contact((GATE,), 2.0, 0.4, 0.0, 0.0) == "target"  # 0.1 < 0.16


BAR = Thing("target", "bar", 2.0, 0.0, 0.0, colour="red", width=1.2, height=0.26)


def test_crawl_with_the_body_too_high_touches_the_bar():
    # Body top = 0.30 + body_height + 0.08: at 0.0 it is 0.38 > 0.26; at -0.22 it is 0.16 < 0.26.
    assert contact((BAR,), 2.0, 0.0, 0.0, 0.0) == "target"
    assert contact((BAR,), 2.0, 0.0, 0.0, -0.10) == "target"  # 0.28 > 0.26
    assert contact((BAR,), 2.0, 0.0, 0.0, -0.22) == ""
    assert contact((BAR,), 2.0, 0.0, 0.0, -0.13) == ""  # 0.25 < 0.26


def test_crawl_success_past_the_bar():
    task = make_task("crawl")
    sc = scenario("crawl", [BAR])
    p = Progress()
    task.update(sc, p, at(1.95, body_height=-0.2), at(2.05, body_height=-0.2))
    assert p.passed
    assert not task.success(sc, p, at(2.45))  # 0.45 past, needs 0.5
    assert task.success(sc, p, at(2.6))


@pytest.mark.parametrize("task_name", TASKS)
@pytest.mark.parametrize("split", ["id", "ood"])
def test_sampled_scenarios_follow_the_split(task_name, split):
    task = make_task(task_name)
    spec = SPLIT_SPECS[split]
    rng = np.random.default_rng(1)
    for _ in range(30):
        sc = task.sample(rng, spec, Style())
        target = sc.target_thing
        assert sc.task == task_name and sc.split == split
        # Nothing overlaps the robot at the start.
        assert contact(sc.things, *sc.start[:2], sc.start[2], 0.0) == ""
        if task_name == "distinguish":
            assert target.letter in spec.letters and target.letter in sc.instruction
            assert len({t.letter for t in sc.things}) == len(sc.things)
        elif task_name == "go_to":
            assert target.kind in spec.objects and target.colour in spec.colours
            assert f"{target.colour} {target.kind}" in sc.instruction
            assert all((t.kind, t.colour) != (target.kind, target.colour) for t in sc.things if t is not target)
        else:
            assert target.colour in spec.colours and target.colour in sc.instruction
        templates = spec.templates[task_name]
        stems = [t.split("{")[0] for t in templates]
        assert any(sc.instruction.startswith(s) for s in stems)


def test_id_and_ood_phrasings_and_targets_are_disjoint():
    ids, oods = SPLIT_SPECS["id"], SPLIT_SPECS["ood"]
    assert not set(ids.colours) & set(oods.colours)
    assert not set(ids.objects) & set(oods.objects)
    assert not set(ids.letters) & set(oods.letters)
    for task in TASKS:
        assert not set(ids.templates[task]) & set(oods.templates[task])
