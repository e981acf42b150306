"""The diagnostics' timing summary, by hand."""

import pytest

from more_common.stats import p50_p99_max


def test_median_p99_and_max_by_hand():
    s = p50_p99_max([4.0, 1.0, 3.0, 2.0])
    assert s["p50"] == pytest.approx(2.5)  # the middle of 1, 2, 3, 4
    assert s["p99"] == pytest.approx(3.97)  # 3 + 0.97 x (4 - 3): the linear rule at 0.99 x 3
    assert s["max"] == 4.0


def test_nothing_measured_is_an_empty_summary():
    assert p50_p99_max([]) == {}
    assert p50_p99_max(iter([7.0])) == {"p50": 7.0, "p99": 7.0, "max": 7.0}
