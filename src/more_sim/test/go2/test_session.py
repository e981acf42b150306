"""The world node's core on the physics Go2 driven from outside: here the controller core plays the chain (one
controller step per 20 ms of physics, as the bridge would apply its targets), the scripted expert plays the VLA.

Decisions fall every 0.2 simulated s, the environment's own rules judge them, episodes follow each other with the
robot placed at each start, and a robot that is not ready (its bridge not ACTIVE) gets no episode."""

import numpy as np
import pytest

from more_sim.config import SimConfig
from more_sim.expert import ScriptedExpert
from more_sim.go2 import MotorCommand
from more_sim.go2.session import LYING_JOINT_POS, Go2Session
from more_sim.go2.walker import control_step, velocity_controller


@pytest.fixture()
def session():
    s = Go2Session("go_to", seed=0, config=SimConfig(image_height=32, image_width=48), reset_delay_decisions=2)
    yield s
    s.close()


def drive(session, controller, decisions, expert=None):
    """Run `decisions` decision periods: the expert decides on each result, the controller walks the robot."""
    results, command = [], None
    for _ in range(decisions * session.controls_per_decision):
        if session.ready:
            control_step(session.body, controller, command)
        else:  # the bridge is not ACTIVE: it damps (or leaves the motors off), the controller's targets go nowhere
            session.body.set_command(MotorCommand(kd=np.full(12, 3.0)))
        for r in session.advance(session.steps_per_control):
            results.append(r)
            if expert is not None and not (r.terminated or r.truncated):
                info = session.env._info(success=False, failure="")
                session.set_command(expert.act(info))
        command = session._latched  # what the controller is told (the node's /more/command)
    return results


def test_no_episode_until_the_robot_is_ready(session):
    controller = velocity_controller()
    assert drive(session, controller, 3) == []
    assert session.phase == "idle" and session.episode == -1
    np.testing.assert_allclose(session.body.q, LYING_JOINT_POS, atol=0.15)  # laid down, waiting to stand up


def test_expert_episode_on_the_externally_driven_robot(session):
    controller = velocity_controller()
    session.ready = True
    results = drive(session, controller, 60, ScriptedExpert())
    first = results[0]
    assert first.new_episode and first.episode == 0 and first.step == 0
    assert first.image.shape == (32, 48, 3)
    ended = [r for r in results if r.terminated or r.truncated]
    assert ended and ended[0].success and ended[0].failure == "", ended[0]
    steps = [r.step for r in results if r.episode == 0 and not r.new_episode]
    assert steps[: ended[0].step] == list(range(1, ended[0].step + 1))  # one result per 0.2 s decision
    # the final result repeats for the reset delay, then episode 1 starts at its own start pose
    nxt = [r for r in results if r.episode == 1]
    assert nxt and nxt[0].new_episode
    index = {id(r): k for k, r in reversed(list(enumerate(results)))}  # first position of each result object
    # the next episode starts reset_delay_decisions (2) decisions after the end, as the kinematic session's does
    assert index[id(nxt[0])] - index[id(ended[0])] == 2
    start = session.env.unwrapped.scenario.start
    assert (nxt[0].state.x, nxt[0].state.y) == pytest.approx(start[:2], abs=0.05)
    moving = [r.velocity[0] for r in results if r.episode == 0 and 3 <= r.step < ended[0].step - 3]
    assert np.mean(moving) > 0.2  # the measured mean velocity of the decisions while walking to the ball
