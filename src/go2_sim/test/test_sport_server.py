"""The simulated sport service in process: the MuJoCo Go2 under the velocity policy answers sport API requests as
the Go2's locomotion would. Judged on the true trunk motion; codes are unitree_sdk2's RPC codes (0, 3203, 3204)."""

import math

import numpy as np
import pytest

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


def test_posture_calls_and_unknown_ids_are_not_implemented_and_bad_move_is_a_parameter_error(policy):
    s = SportServer(policy)
    assert s.handle(1007, '{"x":0.0,"y":0.2,"z":0.0}') == 3203  # Euler: the policy cannot pitch
    assert s.handle(1013, '{"data":-0.1}') == 3203  # BodyHeight: removed in 1.1.6 (not in the current profile)
    assert s.handle(2046, '{"data":true}') == 3203  # FreeBound: the policy only trots
    assert s.handle(9999, "") == 3203
    for bad in ("", "nope", '{"x":0.5}', '{"x":"fast","y":0,"z":0}', '{"x":NaN,"y":0,"z":0}', '{"x":true,"y":0,"z":0}'):
        assert s.handle(1008, bad) == 3204, bad
    assert np.all(s.velocity == 0)
    assert s.status()["handled.move"] == "code 3204: 6"


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
