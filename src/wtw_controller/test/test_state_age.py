"""The joint state's age at each step, by hand: percentiles over the window, unstamped states left out, the warning."""

import pytest

from wtw_controller.state_age import StateAge

MS = 1_000_000


def test_ages_and_their_percentiles_by_hand():
    age = StateAge(window=4)
    assert age.summary() == {} and age.warning(4.0) is None  # nothing measured yet
    for step, stamp in [(10 * MS, 9 * MS), (20 * MS, 18 * MS), (30 * MS, 0), (40 * MS, 37 * MS), (50 * MS, 46 * MS)]:
        age.record(step, stamp)  # ages 1, 2, (unstamped: skipped), 3, 4 ms
    s = age.summary()
    assert s["state_age_p50_ms"] == pytest.approx(2.5)  # the middle of 1, 2, 3, 4
    assert s["state_age_p99_ms"] == pytest.approx(3.97)  # 3 + 0.99 x 3 x (4 - 3) / 1, numpy's linear rule
    assert s["state_age_max_ms"] == pytest.approx(4.0)
    age.record(60 * MS, 50 * MS)  # 10 ms; the window keeps the last four: 2, 3, 4, 10
    assert age.summary()["state_age_p50_ms"] == pytest.approx(3.5)


def test_the_warning_names_the_p99_and_the_limit():
    age = StateAge()
    for k in range(100):
        age.record(k * 20 * MS + 2 * MS, k * 20 * MS)  # 2 ms each
    assert age.warning(4.0) is None and age.warning(0.0) is None
    assert age.warning(1.5) == "stale joint state: p99 age 2.0 ms > 1.5 ms (the walking policy falls more often)"
