"""`go2_backend="sport"`: the Go2 in the six-task world walked by its own locomotion behind the sport API, reached
through the sport backend's core (go2_bridge.sport_core) as `more-stack robot --backend sport` does.

Judged on the true trunk pose and on the requests the core sent: Move no closer than 50 ms, StopMove once on
terminate, Euler for pitch, BodyHeight only on the legacy firmware."""

import json
import math

import numpy as np
import pytest

from more_common.action_contract import action_from_mapping, stand_command
from more_sim.cli import main as more_sim
from more_sim.config import SimConfig
from more_sim.env import make_env

SPORT = SimConfig(embodiment="go2", go2_backend="sport", render_images=False)


def walk(env, command, steps):
    """`steps` decisions (0.2 s each) of `command`; the trunk states after each."""
    states = []
    for _ in range(steps):
        _, _, terminated, _, info = env.step(command)
        assert not terminated, info["failure"]
        states.append(info["state"])
    return states


def test_the_config_refuses_an_unknown_backend_or_sport_without_the_go2():
    with pytest.raises(ValueError, match=r"go2_backend must be one of .*'sport'.*got 'Sport'"):
        SimConfig(embodiment="go2", go2_backend="Sport")
    with pytest.raises(ValueError, match=r"go2_backend 'sport' needs embodiment 'go2', got 'kinematic'"):
        SimConfig(go2_backend="sport")


def test_move_walks_at_the_commanded_speed_and_terminate_stops_with_one_stopmove():
    env = make_env("go_to", "id", SPORT)
    env.reset(seed=1)
    sport = env.unwrapped.embodiment.sport
    moves0 = sport.requests().get("move", 0)
    t0 = sport.body.time
    command = action_from_mapping({"vx": 0.5})
    walk(env, command, 5)  # get going
    states = walk(env, command, 15)  # 3 s
    speed = math.hypot(states[-1].x - states[0].x, states[-1].y - states[0].y) / (14 * 0.2)
    assert 0.375 <= speed <= 0.625, speed
    # the core runs once per 20 ms control step and sends no two Moves closer than 50 ms: one Move every third step
    assert sport.body.time - t0 == pytest.approx(4.0)
    assert sport.requests()["move"] - moves0 in (66, 67)  # 4 s / 60 ms
    assert env.unwrapped.embodiment.commanded_velocity(command) == pytest.approx((0.5, 0.0, 0.0))
    stop = stand_command()
    stop[11] = 1.0
    _, _, terminated, _, info = env.step(stop)
    assert terminated and info["velocity"]["commanded"] == (0.0, 0.0, 0.0)
    assert sport.requests()["stop_move"] == 1 and sport.server.velocity.tolist() == [0.0, 0.0, 0.0]
    env.close()


@pytest.mark.parametrize("backend", ["sport", "sport_legacy"])
def test_pitch_goes_by_euler_and_body_height_only_on_the_legacy_firmware(backend):
    env = make_env("go_to", "id", SimConfig(embodiment="go2", go2_backend=backend, render_images=False))
    env.reset(seed=1)
    states = walk(env, action_from_mapping({"pitch": 0.3}), 10)[5:]  # 2 s standing, the last second judged
    pitch, height = np.mean([s.pitch for s in states]), np.mean([s.body_height for s in states])
    assert 0.25 <= pitch <= 0.4 and abs(height) < 0.03, (pitch, height)  # nose down
    states = walk(env, action_from_mapping({"body_height": -0.1}), 10)[5:]  # Euler 0 and, on legacy, BodyHeight
    pitch, height = np.mean([s.pitch for s in states]), np.mean([s.body_height for s in states])
    legacy = backend == "sport_legacy"
    assert abs(pitch) < 0.05 and (-0.14 <= height <= -0.07 if legacy else abs(height) < 0.03), (pitch, height)
    sent = env.unwrapped.embodiment.sport.requests()
    assert sent["euler"] == 2 and sent.get("body_height", 0) == legacy, sent
    env.close()


def test_eval_on_the_sport_backend_reports_it(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "--policy", "expert", "--tasks", "unload", "--episodes-per-task", "2", "--embodiment", "go2",
            "--go2-backend", "sport", "--out", str(out)]  # fmt: skip
    assert more_sim(argv) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["embodiment"] == "go2" and result["go2_backend"] == "sport"
    assert "embodiment go2 (sport backend)" in (out / "results.md").read_text()
    capsys.readouterr()


def test_the_cli_refuses_the_sport_backend_without_the_go2(capsys):
    code = more_sim(["eval", "--policy", "expert", "--tasks", "go_to", "--go2-backend", "sport"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: go2_backend 'sport' needs embodiment 'go2', got 'kinematic'"
