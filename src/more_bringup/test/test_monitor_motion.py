"""Tracking RMSE and falls from the simulator's odometry, episode status and the policy's decisions, by hand."""

import math

import pytest

from more_bringup.monitor import BRIDGE_KEYS, count_ends, diagnostic_summary, motion_summary, tilt_of

S = 1_000_000_000  # one decision = 1 s of stamps here


def test_tilt_of_a_roll():
    a = 0.5
    assert tilt_of(math.sin(a / 2), 0.0) == pytest.approx(a)
    assert tilt_of(0.0, 0.0) == 0.0


def test_windows_pair_the_decision_on_the_previous_image_with_the_motion_after_it():
    # episode 0: images at 1, 2, 3 s (steps 0, 1, 2), final result repeated at 4 s; episode 1 starts at 5 s
    statuses = {1 * S: (0, 0), 2 * S: (0, 1), 3 * S: (0, 2), 4 * S: (0, 2), 5 * S: (1, 0), 6 * S: (1, 1)}
    commands = [(1 * S, (0.5, 0.0, 0.2)), (2 * S, (0.5, 0.1, 0.0)), (5 * S, (0.0, 0.0, 0.0))]
    odometry = [
        (1 * S, (0.0, 0.0, 0.0), 0.0),
        (2 * S, (0.4, 0.0, 0.1), 0.0),  # window 1..2: commanded (0.5, 0, 0.2): errors -0.1, 0, -0.1
        (3 * S, (0.5, 0.0, 0.0), 0.1),  # window 2..3: commanded (0.5, 0.1, 0): errors 0, -0.1, 0
        (4 * S, (9.0, 9.0, 9.0), 0.0),  # the final result repeated: not a window
        (5 * S, (0.0, 0.0, 0.0), 0.0),
        (6 * S, (0.3, 0.0, 0.0), 1.2),  # window 5..6: commanded zero: error 0.3; and the trunk tipped: a fall
    ]
    out = motion_summary(odometry, statuses, commands)
    assert out["tracking"]["windows"] == 3
    assert out["tracking"]["vx_rmse"] == pytest.approx(math.sqrt((0.01 + 0 + 0.09) / 3))
    assert out["tracking"]["vy_rmse"] == pytest.approx(math.sqrt(0.01 / 3))
    assert out["tracking"]["wz_rmse"] == pytest.approx(math.sqrt(0.01 / 3))
    assert out["falls"] == 1


def test_no_decision_before_the_window_no_sample():
    statuses = {1 * S: (0, 0), 2 * S: (0, 1)}
    odometry = [(1 * S, (0.0, 0.0, 0.0), 0.0), (2 * S, (0.4, 0.0, 0.0), 0.0)]
    out = motion_summary(odometry, statuses, [(int(1.5 * S), (0.5, 0.0, 0.0))])  # decided after the window began
    assert out == {"tracking": {"windows": 0}, "falls": 0}


def test_an_episode_that_ended_in_a_fall_counts_though_the_trunk_never_tipped():
    # the Go2 lying on its belly is level: only the simulator's EpisodeEnd says it fell
    statuses = {1 * S: (0, 0), 2 * S: (0, 1), 3 * S: (1, 0), 4 * S: (1, 1)}
    odometry = [(1 * S, (0.0,) * 3, 0.0), (2 * S, (0.0,) * 3, 0.1), (3 * S, (0.0,) * 3, 0.0), (4 * S, (0.0,) * 3, 1.0)]
    assert motion_summary(odometry, statuses, [])["falls"] == 1  # episode 1 tipped
    assert motion_summary(odometry, statuses, [], {0})["falls"] == 2  # and episode 0 ended in a fall
    assert motion_summary(odometry, statuses, [], {1})["falls"] == 1  # one episode, both signs: counted once


def test_ends_are_counted_most_frequent_first():
    episodes = [{"end": e} for e in ("fall", "success", "time_limit", "success", "contact:obstacle", "fall", "success")]
    counts = count_ends(episodes)
    assert counts == {"success": 3, "fall": 2, "contact:obstacle": 1, "time_limit": 1}
    assert list(counts) == ["success", "fall", "contact:obstacle", "time_limit"]
    assert count_ends([]) == {}


def test_the_controllers_last_status_as_numbers():
    values = {"backend": "velocity", "period_p99_ms": "104.5", "state_age_p50_ms": "6.25", "state_age_p99_ms": "21"}
    out = diagnostic_summary(1, "stale joint state: ...", {**values, "stale_speed_capped": "True"})
    assert out == {
        "level": "WARN",
        "message": "stale joint state: ...",
        "period_p99_ms": 104.5,
        "state_age_p50_ms": 6.25,
        "state_age_p99_ms": 21.0,
        "stale_speed_capped": True,
    }  # only the keys it carried; state_age_max_ms was not there
    assert diagnostic_summary(0, "ok", {"stale_speed_capped": "False"})["stale_speed_capped"] is False
    bridge = {"period_p99_ms": "2.5", "targets_age_p99_ms": "3.25", "lowcmd_published": "900"}
    assert diagnostic_summary(0, "ACTIVE: ok", bridge, BRIDGE_KEYS) == {
        "level": "OK",
        "message": "ACTIVE: ok",
        "period_p99_ms": 2.5,
        "targets_age_p99_ms": 3.25,
    }
    assert diagnostic_summary(0, "ok", {})["level"] == "OK"
