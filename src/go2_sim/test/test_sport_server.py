"""The simulated sport service in process: the MuJoCo Go2 under the velocity policy answers sport API requests as
the Go2's locomotion would. Judged on the true trunk motion (Euler and BodyHeight on the trunk's pitch and height);
codes are unitree_sdk2's RPC codes (0, 3203, 3204)."""

import json
import math

import numpy as np
import pytest

from go2_bridge.sport_api import api_config
from go2_sim.sport_server import Mode, SportServer
from wtw_controller.onnx_policy import OnnxPolicy


@pytest.fixture(scope="module")
def policy():
    return OnnxPolicy()


def seconds(server, s):
    server.advance(round(s / server.body.timestep))


def planar(server):
    return server.body.base_position[:2].copy()


def test_move_walks_and_stopmove_stops(policy):
    s = SportServer(policy)
    assert s.mode is Mode.BALANCE and s.body.base_position[2] > 0.25
    assert s.handle(1008, '{"x":0.5,"y":0.0,"z":0.0}') == 0
    seconds(s, 1.0)
    p0 = planar(s)
    seconds(s, 4.0)
    assert 0.375 <= np.linalg.norm(planar(s) - p0) / 4.0 <= 0.625
    assert s.handle(1003, "") == 0
    seconds(s, 1.5)
    p1 = planar(s)
    seconds(s, 2.0)
    assert np.linalg.norm(planar(s) - p1) / 2.0 < 0.1
    assert s.body.tilt() < 0.3


def test_move_turns(policy):
    s = SportServer(policy)
    s.handle(1008, '{"x":0.0,"y":0.0,"z":0.8}')
    seconds(s, 1.0)
    yaw0, t0 = s.body.base_rpy()[2], s.time
    yaws = []
    for _ in range(40):
        seconds(s, 0.1)
        yaws.append(s.body.base_rpy()[2])
    rate = (np.unwrap([yaw0, *yaws])[-1] - yaw0) / (s.time - t0)
    assert 0.8 * 0.7 <= rate <= 0.8 * 1.3, rate


def trunk(server, s):
    """Mean pitch [rad], mean height [m] and planar speed [m/s] of the trunk over the next `s` seconds."""
    pitch, height, p0, t0 = [], [], planar(server), server.time
    for _ in range(round(s / 0.1)):
        seconds(server, 0.1)
        pitch.append(server.body.base_rpy()[1])
        height.append(server.body.base_position[2])
    return (
        float(np.mean(pitch)),
        float(np.mean(height)),
        float(np.linalg.norm(planar(server) - p0) / (server.time - t0)),
    )


def euler(pitch, roll=0.0, yaw=0.0):
    return json.dumps({"x": roll, "y": pitch, "z": yaw})


def test_euler_pitches_the_trunk_standing_and_walking_within_the_posture_range(policy):
    s = SportServer(policy)
    level_pitch, stand_height, _ = trunk(s, 0.5)
    assert abs(level_pitch) < 0.03
    assert s.handle(1007, euler(0.2)) == 0  # nose down
    seconds(s, 1.0)
    pitch, height, speed = trunk(s, 1.0)
    assert 0.17 <= pitch <= 0.26 and speed < 0.05, (pitch, speed)
    assert abs(height - stand_height) < 0.03  # the hips pivot: the trunk's centre keeps its height
    assert s.handle(1007, euler(-0.3)) == 0  # nose up, the range's end
    seconds(s, 1.0)
    assert -0.36 <= trunk(s, 1.0)[0] <= -0.26
    assert s.handle(1007, euler(0.75)) == 0  # the real firmware's end; the posture's is 0.4
    seconds(s, 1.5)
    assert 0.36 <= trunk(s, 1.0)[0] <= 0.5
    assert s.status()["posture"].startswith("pitch 0.400 rad")
    s.handle(1007, euler(0.2))
    s.handle(1008, '{"x":0.4,"y":0.0,"z":0.0}')
    seconds(s, 1.0)
    pitch, _, speed = trunk(s, 3.0)
    assert 0.1 <= pitch <= 0.3 and 0.4 * 0.7 <= speed <= 0.4 * 1.3, (pitch, speed)
    assert s.handle(1007, euler(0.0)) == 0
    seconds(s, 1.0)
    pitch, _, speed = trunk(s, 2.0)
    assert abs(pitch) < 0.05 and 0.4 * 0.75 <= speed <= 0.4 * 1.25, (pitch, speed)
    assert s.body.tilt() < 0.3


def test_euler_roll_and_yaw_are_accepted_not_followed_and_counted(policy):
    s = SportServer(policy)
    yaw0 = s.body.base_rpy()[2]
    assert s.handle(1007, euler(0.1, roll=0.3, yaw=-0.4)) == 0
    seconds(s, 1.5)
    roll, pitch, yaw = s.body.base_rpy()
    assert abs(roll) < 0.05 and abs(yaw - yaw0) < 0.05 and 0.07 <= pitch <= 0.15, (roll, pitch, yaw)
    assert s.status()["euler_roll_yaw_ignored"] == "1"


def test_body_height_only_on_the_legacy_profile_crouches_and_caps_the_speed(policy):
    assert SportServer(policy).handle(1013, '{"data":-0.1}') == 3203  # removed in 1.1.6: not in `current`
    s = SportServer(policy, api_config("legacy"))
    _, stand_height, _ = trunk(s, 0.5)
    assert s.handle(1013, '{"data":-0.1}') == 0
    seconds(s, 1.0)
    pitch, height, _ = trunk(s, 1.0)
    assert 0.08 <= stand_height - height <= 0.14 and abs(pitch) < 0.05, (stand_height, height, pitch)
    s.handle(1008, '{"x":0.6,"y":0.0,"z":0.0}')
    seconds(s, 1.0)
    _, height, speed = trunk(s, 3.0)
    cap = s.backend.posture.speed_limit(-0.1)  # crouched, the walking policy's speed is capped: below 0.6
    assert cap < 0.5 and 0.1 <= speed <= cap and stand_height - height >= 0.06, (cap, speed, height)
    assert s.handle(1013, '{"data":-0.5}') == 0  # the posture's end: -0.12 m
    seconds(s, 1.0)
    assert s.status()["posture"].endswith("body_height -0.120 m")


def test_posture_is_not_followed_while_lying_and_damp_returns_to_the_level_stand(policy):
    s = SportServer(policy, api_config("legacy"))
    s.handle(1007, euler(0.3))
    s.handle(1013, '{"data":-0.1}')
    seconds(s, 1.0)
    s.handle(1001, "")  # Damp: the firmware drops its posture (what the sport backend assumes)
    assert (s.pitch, s.body_height) == (0.0, 0.0)
    s.handle(1006, "")  # RecoveryStand: stands up and balances
    seconds(s, 2.0)
    assert s.mode is Mode.BALANCE
    pitch, height, _ = trunk(s, 1.0)
    assert abs(pitch) < 0.05 and height > 0.27, (pitch, height)
    s.handle(1005, "")  # StandDown
    seconds(s, 2.0)
    assert s.handle(1007, euler(0.3)) == 0 and s.handle(1013, '{"data":-0.1}') == 0  # accepted while lying...
    assert (s.pitch, s.body_height) == (0.0, 0.0)  # ...not followed, as Move


def test_gait_calls_and_unknown_ids_are_not_implemented_and_bad_parameters_are_parameter_errors(policy):
    s = SportServer(policy)
    assert s.handle(2046, '{"data":true}') == 3203  # FreeBound: the policy only trots
    assert s.handle(9999, "") == 3203
    for bad in ("", "nope", '{"x":0.5}', '{"x":"fast","y":0,"z":0}', '{"x":NaN,"y":0,"z":0}', '{"x":true,"y":0,"z":0}'):
        assert s.handle(1008, bad) == 3204, bad
        assert s.handle(1007, bad) == 3204, bad
    assert np.all(s.velocity == 0) and s.pitch == 0.0
    assert s.status()["handled.move"] == "code 3204: 6"
    legacy = SportServer(policy, api_config("legacy"))
    for bad in ("", '{"data":"low"}', '{"data":Infinity}', '{"height":-0.1}'):
        assert legacy.handle(1013, bad) == 3204, bad
    assert legacy.body_height == 0.0


def test_stand_down_damp_stand_up_balance(policy):
    s = SportServer(policy)
    s.handle(1005, "")  # StandDown
    seconds(s, 2.0)
    assert s.mode is Mode.LYING and s.body.base_position[2] < 0.15
    assert s.handle(1008, '{"x":0.5,"y":0.0,"z":0.0}') == 0  # accepted, not followed while lying
    p0 = planar(s)
    seconds(s, 1.0)
    assert np.linalg.norm(planar(s) - p0) < 0.05
    s.handle(1004, "")  # StandUp: locked stand
    seconds(s, 2.0)
    assert s.mode is Mode.STANDING and s.body.base_position[2] > 0.25
    s.handle(1002, "")  # BalanceStand: walking allowed
    assert s.mode is Mode.BALANCE
    s.handle(1001, "")  # Damp: sinks
    seconds(s, 2.0)
    assert s.mode is Mode.DAMPED and s.body.base_position[2] < 0.2
    s.handle(1006, "")  # RecoveryStand: up and balancing
    seconds(s, 2.5)
    assert s.mode is Mode.BALANCE and s.body.base_position[2] > 0.25 and s.body.tilt() < 0.2


def test_bad_construction_is_refused(policy):
    with pytest.raises(ValueError, match="start must be one of"):
        SportServer(policy, start="sitting")
    with pytest.raises(ValueError, match="transition_s"):
        SportServer(policy, transition_s=math.nan)
