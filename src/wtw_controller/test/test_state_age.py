"""The joint state's age at each step and the guard on it, by hand: percentiles over the window, unstamped states
left out, when the state is judged stale, the warning's text, and the speed cap on the contract command."""

import numpy as np
import pytest

from more_common.action_contract import INDEX, action_from_mapping
from wtw_controller.core import Controller
from wtw_controller.state_age import StaleStateConfig, StaleStateGuard, StateAge
from wtw_controller.velocity import VelocityBackend

MS = 1_000_000


def test_ages_and_their_percentiles_by_hand():
    age = StateAge(window=4)
    assert age.summary() == {} and age.p99() is None  # nothing measured yet
    for step, stamp in [(10 * MS, 9 * MS), (20 * MS, 18 * MS), (30 * MS, 0), (40 * MS, 37 * MS), (50 * MS, 46 * MS)]:
        age.record(step, stamp)  # ages 1, 2, (unstamped: skipped), 3, 4 ms
    s = age.summary()
    assert s["state_age_p50_ms"] == pytest.approx(2.5)  # the middle of 1, 2, 3, 4
    assert s["state_age_p99_ms"] == pytest.approx(3.97)  # 3 + 0.97 x (4 - 3): numpy's linear rule at 0.99 x 3
    assert s["state_age_max_ms"] == pytest.approx(4.0)
    assert s["state_age_min_ms"] == pytest.approx(1.0) and age.minimum() == pytest.approx(1.0)
    age.record(60 * MS, 50 * MS)  # 10 ms; the window keeps the last four: 2, 3, 4, 10
    assert age.summary()["state_age_p50_ms"] == pytest.approx(3.5)


def fill(guard, age_ms, n=100):
    for k in range(n):
        guard.record(k * 20 * MS + round(age_ms * MS), k * 20 * MS + 1)


def test_stale_only_past_the_limit_and_judged_when_asked():
    guard = StaleStateGuard(StaleStateConfig(warn_ms=4.0, speed_cap=0.4))
    guard.judge()
    assert guard.warning is None and not guard.capped  # nothing measured: not stale
    fill(guard, 4.0)
    guard.judge()
    assert guard.warning is None  # at the limit is not past it
    fill(guard, 6.0, n=500)  # the window now holds only 6 ms ages
    assert guard.warning is None  # not judged yet
    guard.judge()
    assert guard.warning == "stale joint state: p99 age 6.0 ms > 4 ms: speed capped at 0.4 m/s" and guard.capped
    fill(guard, 1.0, n=500)
    guard.judge()
    assert guard.warning is None and not guard.capped  # fresh again: the cap is lifted


def test_a_state_stamped_after_its_step_means_the_clocks_differ():
    guard = StaleStateGuard(StaleStateConfig(warn_ms=4.0, speed_cap=0.4))
    fill(guard, -0.9)  # within the tolerance: one clock read a hair later than the other
    guard.judge()
    assert guard.warning is None and not guard.capped
    fill(guard, 2.0, n=499)
    guard.record(10**12, 10**12 + 30 * MS)  # one state stamped 30 ms after the step: no age can be trusted
    guard.judge()
    assert guard.warning == (
        "joint state stamped up to 30.0 ms after the step using it: the bridge's and the controller's clocks differ, "
        "the state's age is unknown: speed capped at 0.4 m/s"
    )
    assert guard.capped
    assert guard.ages.summary()["state_age_min_ms"] == pytest.approx(-30.0)
    fill(guard, 2.0, n=500)  # the window is clear of it again
    guard.judge()
    assert guard.warning is None and not guard.capped
    uncapped = StaleStateGuard(StaleStateConfig(speed_cap=0.0))
    fill(uncapped, -5.0)
    uncapped.judge()
    assert uncapped.warning.endswith("the state's age is unknown: run both on one computer") and not uncapped.capped
    off = StaleStateGuard(StaleStateConfig(warn_ms=0.0))
    fill(off, -5.0)
    off.judge()
    assert off.warning is None  # warn_ms 0 turns the whole check off


def test_judged_once_per_period_when_given_the_time():
    guard = StaleStateGuard(StaleStateConfig(judge_period_s=1.0))
    fill(guard, 10.0)
    guard.judge(now_s=5.0)
    assert guard.capped
    fill(guard, 0.5, n=500)
    guard.judge(now_s=5.9)  # 0.9 s after the last judgement: not judged
    assert guard.capped
    guard.judge(now_s=6.0)
    assert not guard.capped


def test_without_a_cap_or_a_limit():
    guard = StaleStateGuard(StaleStateConfig(speed_cap=0.0))
    fill(guard, 10.0)
    guard.judge()
    assert guard.warning.endswith("> 4 ms: the walking policy falls more often") and not guard.capped
    command = action_from_mapping({"vx": 0.9})
    assert guard.cap(command) is command
    never = StaleStateGuard(StaleStateConfig(warn_ms=0.0))
    fill(never, 50.0)
    never.judge()
    assert never.warning is None


def test_the_cap_clips_vx_and_vy_only_and_leaves_bad_values_to_the_core():
    guard = StaleStateGuard(StaleStateConfig(speed_cap=0.4))
    fill(guard, 10.0)
    guard.judge()
    command = action_from_mapping({"vx": 0.9, "vy": -0.55, "wz": 0.8, "body_height": -0.1})
    capped = guard.cap(command)
    expected = command.copy()
    expected[INDEX["vx"]], expected[INDEX["vy"]] = 0.4, -0.4
    np.testing.assert_array_equal(capped, expected)
    assert command[INDEX["vx"]] == 0.9  # the caller's command is left alone
    slow = action_from_mapping({"vx": -0.2, "vy": 0.1})
    np.testing.assert_array_equal(guard.cap(slow), slow)
    bad = action_from_mapping({"vx": 0.9})
    bad[INDEX["vy"]] = np.nan
    assert np.isnan(guard.cap(bad)[INDEX["vy"]]) and guard.cap(bad)[INDEX["vx"]] == 0.4
    assert guard.cap(None) is None


@pytest.mark.parametrize("field,value", [("warn_ms", -1.0), ("speed_cap", float("nan")), ("judge_period_s", 0.0)])
def test_bad_settings_are_refused_naming_them(field, value):
    with pytest.raises(ValueError, match=field):
        StaleStateConfig(**{field: value})


class ConstantPolicy:
    def __call__(self, observation):
        return np.zeros(12, dtype=np.float32)


def test_the_core_walks_at_the_cap_while_the_state_is_stale():
    guard = StaleStateGuard()
    controller = Controller(VelocityBackend(ConstantPolicy()), stale_guard=guard)
    controller.on_joint_state(np.zeros(12), np.zeros(12), 0.0)
    controller.on_imu(np.array([0.0, 0.0, 0.0, 1.0]), 0.0)
    controller.on_command(action_from_mapping({"vx": 0.8, "vy": 0.3}), 0.0)
    assert controller.step(0.0).commands[:2].tolist() == pytest.approx([0.8, 0.3])
    fill(guard, 8.0)
    guard.judge()
    assert controller.step(0.0).commands[:2].tolist() == pytest.approx([0.4, 0.3])  # vy was under the cap
