"""`embodiment="go2"`: the environment's robot is the physics Go2 walked by the controller core in process.

The experts drive it through the same controller; success is judged on the true trunk pose; contacts are the
physics'; a fall ends the episode as a failure; the commanded velocity is the controller's own mapping."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import more_sim  # noqa: F401  (registers the ids)
from more_common.action_contract import action_from_mapping, stand_command
from more_sim.base_tracker import BaseState
from more_sim.config import SimConfig
from more_sim.env import make_env, mean_velocity
from more_sim.expert import ScriptedExpert

GO2 = SimConfig(embodiment="go2", image_height=64, image_width=96)


def run_expert(env, seed):
    _, info = env.reset(seed=seed)
    expert, states = ScriptedExpert(), [info["state"]]
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(expert.act(info))
        states.append(info["state"])
        done = terminated or truncated
    return info, states, terminated


def test_check_env_passes():
    env = gym.make("MoRE/GoTo-v0", embodiment="go2", image_height=32, image_width=48).unwrapped
    check_env(env, skip_render_check=True)
    env.close()


def test_expert_reaches_the_ball_on_the_walking_robot():
    env = make_env("go_to", "id", GO2)
    info, states, terminated = run_expert(env, seed=0)
    assert terminated and info["success"] and info["failure"] == ""
    assert info["embodiment"] == "go2"
    body = env.unwrapped.embodiment.body
    x, y, z = body.base_position
    s = info["state"]
    assert (s.x, s.y) == (x, y) and s.body_height == pytest.approx(z - 0.30)  # the true trunk pose
    assert abs(s.body_height) < 0.05 and abs(s.pitch) < 0.1  # stood and walked upright
    travelled = math.hypot(states[-1].x - states[0].x, states[-1].y - states[0].y)
    assert travelled > 1.0
    env.close()


def test_same_seed_same_walk():
    a = [s for s in run_expert(make_env("go_through", "id", GO2), seed=2)[1]]
    b = [s for s in run_expert(make_env("go_through", "id", GO2), seed=2)[1]]
    assert a == b


def test_commanded_velocity_is_the_controllers_mapping_and_achieved_is_measured():
    env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, max_episode_steps=100))
    env.reset(seed=1)
    walk = action_from_mapping({"vx": 0.5, "vy": 0.6})  # the velocity backend clips vy to 0.5
    achieved = []
    for _ in range(15):  # 3 s
        _, _, terminated, _, info = env.step(walk)
        assert not terminated, info["failure"]
        assert info["velocity"]["commanded"] == pytest.approx((0.5, 0.5, 0.0))
        achieved.append(info["velocity"]["achieved"])
    mean = np.mean(achieved[5:], axis=0)  # after the first second
    assert mean[0] > 0.2 and mean[1] > 0.05  # forward and to the left, followed short (docs/robot.md)
    stop = stand_command()
    stop[11] = 1.0
    _, _, terminated, _, info = env.step(stop)
    assert terminated and info["velocity"]["commanded"] == (0.0, 0.0, 0.0)
    env.close()


def test_a_fall_ends_the_episode_as_a_failure():
    env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False))
    env.reset(seed=3)
    env.unwrapped.embodiment.body.push(angular=(60.0, 0.0, 0.0), linear=(0.0, 0.0, 2.0))  # thrown up, rolling
    _, reward, terminated, truncated, info = env.step(stand_command())
    assert terminated and not truncated and reward == 0.0
    assert info["failure"] == "fall" and not info["success"]
    env.close()


def test_crawl_crouches_by_posture():
    """The expert asks for body height -0.22 m around the bar; the velocity backend crouches as far as its posture
    range (-0.12 m) and the Go2 walks under a 0.295 m bar without touching it or falling."""
    info, states, terminated = run_expert(make_env("crawl", "id", SimConfig(embodiment="go2", render_images=False)), 0)
    assert info["scenario"].target_thing.height == pytest.approx(0.2948, abs=1e-4)
    heights = np.array([s.body_height for s in states])
    assert heights[0] > -0.03 and -0.18 < heights.min() < -0.1, heights.min()
    assert heights[-1] > -0.05  # stood up again past the bar
    assert terminated and info["success"], info.get("failure")


@pytest.mark.parametrize("vx", [0.0, 0.3])
def test_crouch_and_pitch_at_once_keep_the_chin_off_the_floor(vx):
    """Body height -0.12 m with pitch 0.3-0.4 put the chin on the floor (a fall) before the posture kept the trunk
    0.04 m clear: now the crouch holds and the pitch stops where the chin clears, standing and walking."""
    env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False))
    env.reset(seed=1)
    for _ in range(20):  # 4 s
        _, _, terminated, _, info = env.step(action_from_mapping({"vx": vx, "body_height": -0.22, "pitch": 0.38}))
        assert not terminated, info["failure"]
    posture = env.unwrapped.embodiment.controller.backend.posture
    assert posture.body_height == pytest.approx(-0.12) and 0.05 < posture.pitch < 0.1  # cut from 0.38
    assert info["state"].body_height < -0.1 and posture.limited_steps > 0
    env.close()


def test_mean_velocity_by_hand():
    a = BaseState(x=1.0, y=1.0, yaw=0.0)
    b = BaseState(x=1.0, y=1.2, yaw=math.pi / 2)  # 0.2 m along +y while turning a quarter in 0.5 s
    vx, vy, wz = mean_velocity(a, b, 0.5)
    # mean heading 45 degrees: +y displacement is 0.2 cos 45 forward and 0.2 cos 45 to the left
    assert (vx, vy, wz) == pytest.approx((0.4 * math.sqrt(0.5), 0.4 * math.sqrt(0.5), math.pi))


def test_kinematic_reports_velocity_too():
    env = make_env("go_to", "id", SimConfig(render_images=False))
    env.reset(seed=0)
    for _ in range(10):
        _, _, _, _, info = env.step(action_from_mapping({"vx": 0.4}))
    assert info["embodiment"] == "kinematic"
    assert info["velocity"]["commanded"] == pytest.approx((0.4, 0.0, 0.0))
    assert info["velocity"]["achieved"] == pytest.approx((0.4, 0.0, 0.0), abs=0.01)  # lag settled (tau 0.25 s)
