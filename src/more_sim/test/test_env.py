"""The Gymnasium environment: API conformance, determinism, episode ends, the base's tracking, the camera."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import more_sim  # noqa: F401  (registers the ids)
from more_common.action_contract import INDEX, TERMINATE, InvalidActionError, stand_command
from more_sim.env import MoreSimEnv, make_env
from more_sim.expert import ScriptedExpert
from more_sim.registration import ENV_IDS
from more_sim.tasks import Scenario
from more_sim.world import Thing


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized:UserWarning")  # the contract's ranges are physical
@pytest.mark.parametrize("env_id", list(ENV_IDS.values()))
def test_check_env_passes_for_every_registered_id(env_id):
    env = gym.make(env_id, image_height=32, image_width=32)
    assert env.spec.max_episode_steps is None  # no TimeLimit wrapper: the env applies its config's limit
    assert env.unwrapped.config.max_episode_steps == 100
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_spaces_are_the_contract():
    env = MoreSimEnv("go_to", image_height=24, image_width=40)
    assert env.action_space.shape == (12,)
    assert env.action_space.low[INDEX["vx"]] == -1.0 and env.action_space.high[INDEX["step_frequency"]] == 4.0
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (24, 40, 3) and obs["image"].dtype == np.uint8
    assert obs in env.observation_space
    env.close()


def _expert_episode(task, seed, **kw):
    env = make_env(task, "id", image_height=32, image_width=32, **kw)
    obs, info = env.reset(seed=seed)
    expert = ScriptedExpert()
    frames, actions, infos = [obs["image"]], [], []
    while True:
        a = expert.act(info)
        obs, r, term, trunc, info = env.step(a)
        frames.append(obs["image"])
        actions.append(a)
        infos.append((r, term, trunc, info["success"], info["state"]))
        if term or trunc:
            env.close()
            return np.stack(frames), np.stack(actions), infos, info["instruction"]


def test_same_seed_gives_identical_frames_and_episodes():
    a = _expert_episode("go_avoid", seed=11)
    b = _expert_episode("go_avoid", seed=11)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2] and a[3] == b[3]
    c = _expert_episode("go_avoid", seed=12)
    assert c[3] != a[3] or c[0].shape != a[0].shape or not np.array_equal(c[0][0], a[0][0])


def test_all_task_env_draws_every_task_from_its_seed():
    env = MoreSimEnv("all", render_images=False)
    tasks = {env.reset(seed=s)[1]["task"] for s in range(40)}
    assert tasks == set(ENV_IDS) - {"all"}
    assert env.reset(seed=5)[1]["instruction"] == env.reset(seed=5)[1]["instruction"]


@pytest.mark.parametrize("make", ["gym.make", "make_env"])
def test_time_limit_truncates(make):
    from more_sim.config import SimConfig

    config = SimConfig(max_episode_steps=4, render_images=False)
    env = gym.make("MoRE/GoTo-v0", config=config) if make == "gym.make" else make_env("go_to", config=config)
    env.reset(seed=0)
    for step in range(1, 5):
        _, reward, terminated, truncated, info = env.step(stand_command())
        assert not terminated and reward == 0.0
        assert truncated == (step == 4)
    assert not info["success"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(stand_command())


def test_a_termination_on_the_last_allowed_step_is_not_also_a_truncation():
    """gymnasium's TimeLimit sets truncated on that step too; the episode ended by the robot's stop, not the clock."""
    from more_sim.config import SimConfig

    env = make_env("go_to", config=SimConfig(max_episode_steps=3, render_images=False))
    env.reset(seed=3)
    env.step(stand_command())
    env.step(stand_command())
    cmd = stand_command()
    cmd[TERMINATE] = 1.0
    _, _, terminated, truncated, info = env.step(cmd)
    assert terminated and not truncated and info["step"] == 3


def test_terminate_ends_the_episode_and_success_pays_one():
    env = MoreSimEnv("go_to", render_images=False)
    env.reset(seed=3)
    cmd = stand_command()
    cmd[TERMINATE] = 1.0
    _, reward, terminated, truncated, info = env.step(cmd)
    assert terminated and not truncated and not info["success"] and reward == 0.0  # far from the target
    with pytest.raises(RuntimeError, match="reset"):
        env.step(cmd)
    # Hand-built: the target 0.8 m ahead of the robot's surface reach -> terminate succeeds.
    sc = Scenario("go_to", "id", "go to the red ball", (Thing("target", "ball", 1.0, 0.0, colour="red"),), "target")
    env.reset(options={"scenario": sc})
    _, reward, terminated, _, info = env.step(cmd)
    assert terminated and info["success"] and reward == 1.0


def test_contact_fails_at_once():
    env = MoreSimEnv("go_to", render_images=False)
    sc = Scenario("go_to", "id", "x", (Thing("target", "ball", 0.8, 0.0, colour="red"),), "target")
    env.reset(options={"scenario": sc})
    cmd = stand_command()
    cmd[INDEX["vx"]] = 1.0
    for _ in range(10):
        _, reward, terminated, _, info = env.step(cmd)
        if terminated:
            break
    assert terminated and info["failure"] == "contact:target" and reward == 0.0


def test_nan_command_is_rejected():
    env = MoreSimEnv("go_to", render_images=False)
    env.reset(seed=0)
    bad = stand_command()
    bad[INDEX["wz"]] = math.nan
    with pytest.raises(InvalidActionError, match="wz"):
        env.step(bad)


def test_base_follows_a_first_order_lag():
    # Exact response to a step in vx (tau 0.25 s) from rest: x(t) = v (t - tau (1 - exp(-t / tau))).
    env = MoreSimEnv("go_to", render_images=False)
    env.reset(options={"scenario": Scenario("go_to", "id", "x", (Thing("target", "ball", 50, 50),), "target")})
    cmd = stand_command()
    cmd[INDEX["vx"]] = 0.6
    for _ in range(10):  # 10 decisions at 5 Hz = 2 s
        _, _, _, _, info = env.step(cmd)
    t, tau = 2.0, 0.25
    assert info["state"].x == pytest.approx(0.6 * (t - tau * (1 - math.exp(-t / tau))), abs=2e-3)
    assert info["state"].vx == pytest.approx(0.6 * (1 - math.exp(-t / tau)), abs=1e-6)
    # Commands beyond the controller's range are clipped: vx 3 m/s runs at 1 m/s.
    cmd[INDEX["vx"]] = 3.0
    for _ in range(10):
        _, _, _, _, info = env.step(cmd)
    assert info["command"][INDEX["vx"]] == 1.0 and info["state"].vx == pytest.approx(1.0, abs=1e-3)


def _sky_fraction(image):
    r, _g, b = (image[..., i].astype(int) for i in range(3))
    return float(((b > 200) & (b > r + 15)).mean())


def test_camera_moves_with_pitch_and_body_height():
    env = MoreSimEnv("go_to", image_height=64, image_width=64)
    far = (Thing("target", "cube", 3.0, 0.0, colour="red"),)
    obs0, _ = env.reset(options={"scenario": Scenario("go_to", "id", "x", far, "target")})
    cmd = stand_command()
    cmd[INDEX["pitch"]] = 0.4  # nose down: less sky
    for _ in range(8):
        obs1, *_ = env.step(cmd)
    assert _sky_fraction(obs1["image"]) < _sky_fraction(obs0["image"]) - 0.1
    # Lower body: the red cube's top edge rises in the image (it is seen from lower down).
    env.reset(options={"scenario": Scenario("go_to", "id", "x", far, "target")})
    cmd = stand_command()
    cmd[INDEX["body_height"]] = -0.25
    for _ in range(8):
        obs2, *_ = env.step(cmd)

    def red_rows(img):
        red = (img[..., 0] > 150) & (img[..., 1] < 80)
        return np.nonzero(red.any(axis=1))[0]

    assert red_rows(obs2["image"]).min() < red_rows(obs0["image"]).min()
    env.close()


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="image_height"):
        MoreSimEnv("go_to", image_height=4)
    with pytest.raises(ValueError, match="control_hz"):
        MoreSimEnv("go_to", decision_hz=10.0, control_hz=5.0)
    with pytest.raises(ValueError, match="unknown task"):
        MoreSimEnv("fly")
    env = MoreSimEnv("all", render_images=False)
    with pytest.raises(ValueError, match="unknown task 'fly'"):
        env.reset(seed=0, options={"task": "fly"})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(seed=0, options={"colour": "red"})


def test_an_instruction_given_at_reset_stays_inside_the_observation_space():
    env = make_env("go_to", image_height=16, image_width=16)
    for text in ("go to the red ball!", 'go to the "red" ball'):  # a user's punctuation: accepted, in the space
        obs, info = env.reset(seed=0, options={"instruction": text})
        assert obs["instruction"] == info["instruction"] == text and obs in env.observation_space
    for text, needle in (("x" * 257, "257 characters is longer than 256"), ("gehe zum Ball ä", "['ä']")):
        with pytest.raises(ValueError, match=needle):
            env.reset(seed=0, options={"instruction": text})
