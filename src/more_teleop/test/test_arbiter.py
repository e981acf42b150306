"""The command arbiter (pure, time injected): priority, deadman, hand-back, twist mapping, bad input."""

import math

import numpy as np
import pytest

from more_common.action_contract import INDEX, TERMINATE, stand_command
from more_teleop.arbiter import (
    STOP,
    TELEOP,
    TWIST,
    VLA,
    CommandArbiter,
    MuxConfig,
    check_command,
    check_twist,
    twist_of,
)


def command(vx=0.0, vy=0.0, wz=0.0, terminate=0.0):
    c = stand_command()
    c[INDEX["vx"]], c[INDEX["vy"]], c[INDEX["wz"]], c[TERMINATE] = vx, vy, wz, terminate
    return c


def vla(vx, now, arb):
    return arb.receive(check_command(VLA, command(vx=vx)), now)


def teleop(vx, now, arb):
    return arb.receive(check_command(TELEOP, command(vx=vx)), now)


def test_vla_alone_passes_through_unchanged():
    arb = CommandArbiter()
    out = vla(0.4, 0.0, arb)
    assert out.source == VLA and out.passthrough and out.command[INDEX["vx"]] == 0.4
    assert arb.tick(0.1) is None  # nothing extra between VLA decisions
    assert arb.active == VLA


def test_nothing_is_published_before_any_input_or_when_the_vla_alone_falls_silent():
    arb = CommandArbiter(MuxConfig(vla_timeout_s=1.0))
    assert arb.tick(0.0) is None and arb.reason == "no command received yet"
    vla(0.4, 0.0, arb)
    assert arb.tick(1.5) is None  # the downstream watchdogs stand the robot, as without the mux
    assert arb.active == STOP and "no VLA command for more than 1 s" in arb.reason


def test_teleop_overrides_the_vla_while_it_keeps_arriving_then_stop_until_a_fresh_vla_command():
    arb = CommandArbiter(MuxConfig(teleop_timeout_s=0.5, vla_timeout_s=1.0))
    vla(0.4, 0.0, arb)
    assert arb.overrides == 0  # the VLA taking over from the initial stop is no override
    out = teleop(-0.3, 0.1, arb)
    assert out.source == TELEOP and out.command[INDEX["vx"]] == -0.3
    assert arb.overrides == 1
    # the VLA keeps deciding at 5 Hz: dropped while the teleop arrives every 0.2 s
    for k in range(1, 6):
        assert vla(0.4, 0.1 + 0.2 * k - 0.05, arb) is None
        assert teleop(-0.3, 0.1 + 0.2 * k, arb).source == TELEOP
    assert arb.stats[VLA].dropped == 5
    last_teleop = 1.1
    # within the deadman the teleop still rules, even without a new message
    assert arb.tick(last_teleop + 0.5) is None and arb.active == TELEOP
    # past it: the robot stands; a VLA command decided during the override does not count as fresh
    out = arb.tick(last_teleop + 0.51)
    assert out.source == STOP and np.array_equal(out.command, stand_command())
    assert "fresh" in arb.reason
    assert arb.tick(last_teleop + 0.55).source == STOP  # owed at every tick until the VLA decides anew
    out = vla(0.2, last_teleop + 0.6, arb)
    assert out.source == VLA and out.command[INDEX["vx"]] == 0.2
    assert arb.tick(last_teleop + 0.7) is None


def test_a_vla_command_arriving_in_the_deadman_window_is_not_fresh_after_release():
    arb = CommandArbiter(MuxConfig(teleop_timeout_s=0.5))
    vla(0.4, 0.0, arb)
    teleop(0.1, 0.1, arb)
    assert vla(0.4, 0.5, arb) is None  # teleop released at 0.1 + 0.5 = 0.6: this one predates that
    assert arb.tick(0.61).source == STOP
    assert vla(0.4, 0.62, arb).source == VLA


def test_immediate_resume_hands_back_to_the_newest_live_vla_command_once():
    arb = CommandArbiter(MuxConfig(teleop_timeout_s=0.5, vla_timeout_s=1.0, resume="immediate"))
    vla(0.4, 0.0, arb)
    teleop(0.1, 0.1, arb)
    assert vla(0.7, 0.5, arb) is None
    out = arb.tick(0.61)
    assert out.source == VLA and out.command[INDEX["vx"]] == 0.7 and not out.passthrough
    assert arb.tick(0.7) is None  # once only
    # immediate, but not a stale command: VLA silent for longer than its timeout -> stop
    arb2 = CommandArbiter(MuxConfig(teleop_timeout_s=0.5, vla_timeout_s=1.0, resume="immediate"))
    vla(0.4, 0.0, arb2)
    teleop(0.1, 0.9, arb2)
    assert arb2.tick(1.41).source == STOP and "no VLA command" in arb2.reason


def test_teleop_command_outranks_twist_and_twist_outranks_vla():
    arb = CommandArbiter()
    vla(0.4, 0.0, arb)
    assert arb.overrides == 0
    out = arb.receive(check_twist((0.2, 0.0, 0.0), (0.0, 0.0, 0.5)), 0.1)
    assert out.source == TWIST and arb.overrides == 1
    out = teleop(0.3, 0.2, arb)
    assert out.source == TELEOP and arb.overrides == 1  # operator to operator is not another override
    assert arb.receive(check_twist((0.2, 0.0, 0.0), (0.0, 0.0, 0.0)), 0.3) is None
    # the teleop lets go; the twist, still arriving, takes over at once (no fresh-command rule between operators)
    assert arb.receive(check_twist((0.25, 0.0, 0.0), (0.0, 0.0, 0.0)), 0.75).source == TWIST


def test_twist_maps_rep103_to_the_contract_and_clips_with_a_report():
    c = check_twist((0.5, 0.2, 0.0), (0.0, 0.0, -0.3))
    expected = stand_command()
    expected[INDEX["vx"]], expected[INDEX["vy"]], expected[INDEX["wz"]] = 0.5, 0.2, -0.3
    assert np.array_equal(c.command, expected) and not c.clipped and not c.rejected
    c = check_twist((2.0, -0.9, 0.1), (0.0, 0.3, 1.5))
    assert c.command[INDEX["vx"]] == 1.0 and c.command[INDEX["vy"]] == -0.6 and c.command[INDEX["wz"]] == 1.0
    assert c.clipped == ("vx", "vy", "wz")
    assert c.ignored == ("linear.z", "angular.y")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_a_stop_from_its_source_which_keeps_control(bad):
    arb = CommandArbiter(MuxConfig(teleop_timeout_s=0.5))
    vla(0.4, 0.0, arb)
    teleop(0.3, 0.1, arb)
    c = command(vx=0.3)
    c[INDEX["pitch"]] = bad
    checked = check_command(TELEOP, c)
    assert checked.rejected and checked.error == "non-finite pitch"
    out = arb.receive(checked, 0.2)
    assert out.source == STOP and np.array_equal(out.command, stand_command())
    assert arb.active == TELEOP  # a broken operator input does not hand the robot to the VLA
    assert vla(0.4, 0.25, arb) is None
    assert arb.stats[TELEOP].rejected == 1
    twist = check_twist((0.1, bad, 0.0), (0.0, 0.0, 0.0))
    assert twist.rejected and twist.error == "non-finite twist linear.y"
    assert np.array_equal(twist.command, stand_command())


def test_out_of_range_12_dim_command_is_clipped_and_not_passed_through():
    c = command(vx=1.7)
    c[INDEX["body_height"]] = -0.5
    checked = check_command(TELEOP, c)
    assert checked.clipped == ("vx", "body_height")
    assert checked.command[INDEX["vx"]] == 1.0 and checked.command[INDEX["body_height"]] == -0.25
    out = CommandArbiter().receive(checked, 0.0)
    assert not out.passthrough  # the node publishes the clipped values, not the message it got
    assert check_command(TELEOP, np.zeros(11)).error == "command has shape (11,), expected (12,)"


def test_twist_mirror_is_zero_when_terminated():
    assert twist_of(command(0.3, -0.1, 0.2)) == (0.3, -0.1, 0.2)
    assert twist_of(command(0.3, -0.1, 0.2, terminate=1.0)) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"teleop_timeout_s": 0.0}, "teleop_timeout_s"),
        ({"vla_timeout_s": math.nan}, "vla_timeout_s"),
        ({"resume": "later"}, "resume"),
    ],
)
def test_bad_config_is_rejected_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MuxConfig(**kwargs)
