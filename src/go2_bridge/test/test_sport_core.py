"""The sport-mode backend's decisions with injected time: every expected request sequence is written out by hand
(times, ids, parameter text as unitree_ros2's SportClient formats it)."""

import math

import numpy as np
import pytest

from go2_bridge.sport_api import api_config
from go2_bridge.sport_core import Level, SportConfig, SportCore, State
from more_common.action_contract import action_from_mapping

WALK = action_from_mapping({"vx": 0.5})
MOVE_HALF = ("move", 1008, '{"x":0.5,"y":0.0,"z":0.0}')
STOP = ("stop_move", 1003, "")
DAMP = ("damp", 1001, "")


def run(core, t0, t1, dt=0.01, commands=None, every=None):
    """Step from t0 to t1 (inclusive) every dt; `commands(t)` gives the command to feed at t (or None), fed every
    `every` seconds (default: each step). Returns [(t, (name, id, parameter)), ...]."""
    out = []
    n = round((t1 - t0) / dt)
    next_feed = t0
    for k in range(n + 1):
        t = round(t0 + k * dt, 9)
        if commands is not None and t >= next_feed - 1e-12:
            c = commands(t)
            if c is not None:
                core.on_command(c, t)
            next_feed = t + (every or 0.0)
        out += [(t, (r.name, r.api_id, r.parameter)) for r in core.step(t)]
    return out


def times(seq, what):
    return [t for t, r in seq if r[0] == what]


def test_move_rate_is_bounded():
    core = SportCore(SportConfig(move_rate_hz=20.0))
    seq = run(core, 0.0, 0.999, dt=0.001, commands=lambda t: WALK, every=0.1)  # a 10 Hz policy, 1 kHz ticks
    assert [r for _, r in seq] == [MOVE_HALF] * 20
    assert times(seq, "move") == pytest.approx([k * 0.05 for k in range(20)])
    fast = SportCore(SportConfig(move_rate_hz=50.0))
    seq = run(fast, 0.0, 0.999, dt=0.001, commands=lambda t: WALK)  # a new command every millisecond
    assert times(seq, "move") == pytest.approx([k * 0.02 for k in range(50)])
    with pytest.raises(ValueError, match=r"move_rate_hz must be in \(0, 50\]"):
        SportConfig(move_rate_hz=60.0)


def test_command_timeout_sends_one_stopmove():
    core = SportCore(SportConfig(move_rate_hz=20.0, command_timeout_s=0.5))
    core.on_command(WALK, 0.0)
    seq = run(core, 0.0, 2.0)
    # Moves while the command is at most 0.5 s old (0 ... 0.5), StopMove at the first tick after, then silence
    assert times(seq, "move") == pytest.approx([k * 0.05 for k in range(11)])
    assert [(t, r) for t, r in seq if r[0] != "move"] == [(0.51, STOP)]
    assert core.reason == "command timeout: stopped"
    assert core.level(2.0)[0] is Level.WARN


def test_nothing_is_sent_before_the_first_command():
    core = SportCore()
    assert run(core, 0.0, 1.0) == []
    assert core.reason == "no command yet" and core.level(1.0)[0] is Level.OK


def test_terminate_stops_once_and_a_new_command_moves_again():
    core = SportCore(SportConfig(move_rate_hz=20.0))
    stop = action_from_mapping({"vx": 0.5, "terminate": 1.0})
    seq = run(core, 0.0, 0.9, commands=lambda t: WALK if t < 0.3 else (stop if t < 0.6 else WALK), every=0.1)
    assert times(seq, "move") == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9])
    assert [(t, r) for t, r in seq if r[0] != "move"] == [(0.3, STOP)]


def test_estop_stopmove_then_damp_repeated_and_latched():
    core = SportCore(SportConfig(move_rate_hz=20.0, estop_repeat_s=1.0, stand_up_settle_s=2.0))
    seq = run(core, 0.0, 0.3, commands=lambda t: WALK)
    assert times(seq, "move")[-1] == pytest.approx(0.3)
    core.on_estop(True, 0.32)
    assert [(r.name, r.api_id, r.parameter) for r in core.step(0.32)] == [STOP, DAMP]  # in this order
    seq = run(core, 0.33, 2.5, commands=lambda t: WALK)  # the policy keeps commanding: nothing moves
    assert seq == [(1.32, DAMP), (2.32, DAMP)]
    assert core.state is State.ESTOP and core.level(2.5)[0] is Level.WARN
    assert core.request("stand_up", 2.5) == (False, "refused: the e-stop is active")
    core.on_estop(False, 2.6)
    assert run(core, 2.6, 3.0, commands=lambda t: WALK) == []  # released, still latched
    ok, _ = core.request("stand_down", 3.0)
    assert not ok
    assert core.request("stand_up", 3.0)[0]
    seq = run(core, 3.0, 5.1, commands=lambda t: WALK)
    assert seq[0] == (3.0, ("stand_up", 1004, ""))
    assert seq[1] == (5.0, ("balance_stand", 1002, ""))
    assert seq[2] == (5.0, MOVE_HALF)
    assert times(seq, "move") == pytest.approx([5.0, 5.05, 5.1])


def test_estop_while_standing_still_also_damps():
    core = SportCore()
    core.on_estop(True, 1.0)
    assert [r.name for r in core.step(1.0)] == ["stop_move", "damp"]


def test_invalid_command_stops_with_an_error_until_a_valid_one():
    core = SportCore(SportConfig(move_rate_hz=20.0))
    bad = action_from_mapping({"vx": 0.5})
    bad[1] = math.nan
    seq = run(core, 0.0, 0.4, commands=lambda t: WALK if t < 0.2 or t >= 0.3 else bad, every=0.1)
    assert times(seq, "move") == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.3, 0.35, 0.4])
    assert [(t, r) for t, r in seq if r[0] != "move"] == [(0.2, STOP)]
    core.on_command(bad, 0.5)
    assert [r.name for r in core.step(0.5)] == ["stop_move"]
    level, message = core.level(0.5)
    assert level is Level.ERROR and "invalid" in message and "'vy'" in message, message
    core.on_command(np.zeros(5), 0.6)  # wrong size: invalid too
    core.step(0.6)
    assert core.level(0.6)[0] is Level.ERROR and "must have 12 values" in core.reason, core.reason
    core.on_command(WALK, 0.7)
    assert [r.name for r in core.step(0.7)] == ["move"] and core.level(0.7)[0] is Level.OK


def test_velocity_clipped_to_the_configured_limits_and_reported():
    core = SportCore(SportConfig(vx_limits=(-0.5, 0.8), wz_limits=(-0.3, 0.3)))
    core.on_command(action_from_mapping({"vx": 1.0, "vy": 0.1, "wz": -1.0}), 0.0)
    assert [r.parameter for r in core.step(0.0)] == [
        '{"x":0.800000011920929,"y":0.10000000149011612,"z":-0.30000001192092896}'
    ]
    values = core.values()
    assert values["clipped_dims"] == "vx,wz" and values["clipped_commands"] == 1
    core.on_command(action_from_mapping({"vx": 0.2}), 0.1)
    assert core.values()["clipped_dims"] == "none" and core.values()["clipped_commands"] == 1
    with pytest.raises(ValueError, match="vx_limits must be finite"):
        SportConfig(vx_limits=(0.2, 1.0))


def test_pitch_by_euler_with_dead_band_rate_and_back_to_nominal():
    core = SportCore(SportConfig(move_rate_hz=10.0, posture_rate_hz=2.0, pitch_deadband_rad=0.02))
    pitch = {0.0: 0.1, 0.1: 0.11, 0.2: 0.3}

    def command(t):
        p = pitch[max(k for k in pitch if k <= t + 1e-9)]
        return action_from_mapping({"vx": 0.5, "pitch": p, "terminate": float(t >= 0.8)})

    seq = run(core, 0.0, 1.0, commands=command, every=0.1)
    euler = [(t, r[2]) for t, r in seq if r[0] == "euler"]
    assert euler == [
        (0.0, '{"x":0.0,"y":0.10000000149011612,"z":0.0}'),  # first
        (0.5, '{"x":0.0,"y":0.30000001192092896,"z":0.0}'),  # 0.11 is within the dead band; 0.3 waits for 2 Hz
        (0.8, '{"x":0.0,"y":0.0,"z":0.0}'),  # terminate: nominal posture again, right after StopMove
    ]
    assert [r[0] for t, r in seq if t == 0.8] == ["stop_move", "euler"]


def test_body_height_only_where_the_firmware_offers_it():
    crouch = action_from_mapping({"vx": 0.3, "body_height": -0.1})
    current = SportCore()
    current.on_command(crouch, 0.0)
    assert [r.name for r in current.step(0.0)] == ["move"]
    assert current.values()["dims_requested_but_ignored"] == "body_height"
    assert "body_height" not in current.followed
    legacy = SportCore(api=api_config("legacy"))
    legacy.on_command(crouch, 0.0)
    assert [(r.name, r.api_id, r.parameter) for r in legacy.step(0.0)] == [
        ("body_height", 1013, '{"data":-0.10000000149011612}'),
        ("move", 1008, '{"x":0.30000001192092896,"y":0.0,"z":0.0}'),
    ]
    assert legacy.values()["dims_requested_but_ignored"] == "none"


GAIT = {name: action_from_mapping(dict(zip(("gait_phase", "gait_offset", "gait_bound"), g, strict=True)))
        for name, g in {"trot": (0.5, 0, 0), "bound": (0, 0.5, 0), "pace": (0, 0, 0.5)}.items()}  # fmt: skip


def test_gait_switching_held_then_switched_and_off_again():
    core = SportCore(SportConfig(move_rate_hz=10.0, switch_gaits=True, gait_hold_s=1.0))
    plan = [(0.0, "bound"), (0.5, "trot"), (0.6, "bound"), (2.0, "trot"), (3.5, "pace")]

    def command(t):
        return GAIT[max((p for p in plan if p[0] <= t + 1e-9), key=lambda p: p[0])[1]]

    seq = run(core, 0.0, 5.0, dt=0.1, commands=command)
    gait_calls = [(t, r) for t, r in seq if r[0] not in ("move",)]
    assert gait_calls == [
        (1.6, ("free_bound", 2046, '{"data":true}')),  # bound held 1 s from 0.6
        (3.0, ("free_bound", 2046, '{"data":false}')),  # back to the robot's own trot
    ]
    assert core.gait == "trot" and core.values()["dims_requested_but_ignored"] == "gait"  # pace is not offered


def test_gaits_are_reported_not_switched_by_default_and_on_legacy_firmware():
    for core in (SportCore(), SportCore(SportConfig(switch_gaits=True), api_config("legacy"))):
        seq = run(core, 0.0, 3.0, dt=0.1, commands=lambda t: GAIT["bound"])
        assert {r[0] for _, r in seq} == {"move"}
        assert core.values()["dims_requested_but_ignored"] == "gait"


def test_the_dims_not_done_are_reported():
    core = SportCore()
    core.on_command(action_from_mapping({"vx": 0.2, "step_frequency": 2.2, "stance_width": 0.4}), 0.0)
    values = core.values()
    assert values["dims_followed"] == "vx,vy,wz,pitch,terminate"
    assert values["dims_requested_but_ignored"] == "step_frequency,stance_width"


@pytest.mark.parametrize(
    ("what", "calls", "state"),
    [("damp", ["stop_move", "damp"], State.DOWN), ("stand_down", ["stop_move", "stand_down"], State.DOWN)],
)
def test_damp_and_stand_down_stop_and_hold_until_stand_up(what, calls, state):
    core = SportCore(SportConfig(move_rate_hz=20.0, stand_up_settle_s=1.5))
    run(core, 0.0, 0.2, commands=lambda t: WALK)
    assert core.request(what, 0.25)[0]
    assert [r.name for r in core.step(0.25)] == calls and core.state is state
    assert run(core, 0.26, 1.0, commands=lambda t: WALK) == []
    assert core.request("recovery_stand", 1.0)[0]
    seq = run(core, 1.0, 2.6, commands=lambda t: WALK)
    assert seq[:3] == [(1.0, ("recovery_stand", 1006, "")), (2.5, ("balance_stand", 1002, "")), (2.5, MOVE_HALF)]


def test_answers_are_reported_per_call_and_a_refused_stop_is_an_error():
    core = SportCore()
    core.on_response(1008, 0)
    core.on_response(1007, 3203)
    level, message = core.level(0.0)
    assert level is Level.WARN and "euler answered 3203" in message
    assert core.values()["answer.euler"] == "code 3203 (answers 1, non-zero 1)"
    assert core.values()["answer.move"] == "code 0 (answers 1, non-zero 0)"
    core.on_response(1001, 3202)
    assert core.level(0.0)[0] is Level.ERROR
    core.on_response(1001, 0)
    core.on_response(1007, 0)
    assert core.level(0.0)[0] is Level.OK
    core.on_response(7777, 1)
    assert "api_7777 answered 1" in core.level(0.0)[1]


def test_exit_sends_stopmove_and_requests_are_counted():
    core = SportCore()
    run(core, 0.0, 0.1, commands=lambda t: WALK)
    assert [(r.name, r.api_id) for r in core.exit_requests()] == [("stop_move", 1003)]
    values = core.values()
    assert values["sent.move"] == 3 and values["sent.stop_move"] == 1
    with pytest.raises(ValueError, match="unknown request"):
        core.request("jump", 0.0)


def test_custom_ids_are_used():
    core = SportCore(api=api_config("current", {"ids": {"move": 3008, "stop_move": 3003}}))
    core.on_command(WALK, 0.0)
    assert [r.api_id for r in core.step(0.0)] == [3008]
    assert [r.api_id for r in core.step(0.6)] == [3003]
