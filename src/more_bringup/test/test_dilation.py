"""One time scale for the whole simulated go2 stack: rates x scale, durations / scale, staleness timeouts at least
2 s of wall time in slow motion, the simulator's real_time_factor = scale; auto picks 1 only on a robot-class,
idle machine."""

import pytest

from more_bringup.dilation import SLOW_MOTION, auto_scale, dilate

SPECS = {
    "policy_node": {"rate_hz": (5.0,), "image_timeout_s": (0.5,)},
    "wtw_controller": {
        "rate_hz": (50.0,),
        "command_timeout_s": (0.5,),
        "sensor_timeout_s": (0.1,),
        "state_age_warn_ms": (4.0,),
    },
    "go2_bridge": {
        "rate_hz": (500.0,),
        "stand_up_duration_s": (2.0,),
        "activate_blend_s": (0.5,),
        "min_damping_s": (1.0,),
        "target_timeout_s": (0.1,),
        "lowstate_timeout_s": (0.05,),
    },
}


def test_slow_motion_by_hand():
    sections = {"policy_node": {"rate_hz": 10.0, "checkpoint": "x"}, "more_sim": {"seed": 3}}
    out = dilate(sections, SPECS, 0.25)
    assert out["policy_node"] == {"rate_hz": 2.5, "image_timeout_s": 2.0, "checkpoint": "x"}  # file's 10 Hz x 0.25
    assert out["wtw_controller"] == {
        "rate_hz": 12.5,
        "command_timeout_s": 2.0,
        "sensor_timeout_s": 2.0,  # 0.4 -> 2
        "state_age_warn_ms": 16.0,  # a duration: 4 ms of simulated time is 16 ms of wall time at x0.25
    }
    assert out["go2_bridge"] == {
        "rate_hz": 125.0,
        "stand_up_duration_s": 8.0,
        "activate_blend_s": 2.0,
        "min_damping_s": 4.0,
        "target_timeout_s": 2.0,  # 0.1 / 0.25 = 0.4 s, floored at 2 s of wall time
        "lowstate_timeout_s": 2.0,
    }
    assert out["more_sim"] == {"seed": 3, "real_time_factor": 0.25}
    assert sections["policy_node"]["rate_hz"] == 10.0  # the input is left alone


def test_full_speed_changes_nothing_but_states_the_factor():
    out = dilate({}, SPECS, 1.0)
    assert out["go2_bridge"]["target_timeout_s"] == 0.1 and out["wtw_controller"]["sensor_timeout_s"] == 0.1
    assert out["policy_node"]["rate_hz"] == 5.0 and out["more_sim"] == {"real_time_factor": 1.0}


def test_nodes_not_in_the_stack_are_not_added():
    assert set(dilate({}, {"policy_node": SPECS["policy_node"]}, 0.5)) == {"policy_node", "more_sim"}


@pytest.mark.parametrize("scale", [0.0, -0.2, 1.5, float("nan"), float("inf")])
def test_bad_scale_is_refused(scale):
    with pytest.raises(ValueError, match="time scale"):
        dilate({}, SPECS, scale)


@pytest.mark.parametrize(
    "cpus,load,expected", [(2, 0.1, SLOW_MOTION), (8, 1.0, 1.0), (8, 4.5, SLOW_MOTION), (16, 7.0, 1.0), (4, 0.0, 0.2)]
)
def test_auto_scale(cpus, load, expected):
    assert auto_scale(cpus, load) == expected
