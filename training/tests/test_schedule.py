"""Warm-up + cosine schedule against hand-computed values."""

import itertools

import pytest

from more_training.schedule import WarmupCosine


def test_hand_computed_points():
    s = WarmupCosine(base_lr=1e-3, warmup_steps=10, total_steps=110, final_fraction=0.1)
    assert s(0) == pytest.approx(1e-4)  # 1/10 of the way up
    assert s(9) == pytest.approx(1e-3)  # end of warm-up
    assert s(10) == pytest.approx(1e-3)  # cosine starts at the peak
    assert s(60) == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # half-way: cos(pi/2) = 0
    assert s(110) == pytest.approx(1e-4)
    assert s(10_000) == pytest.approx(1e-4)


def test_monotone_after_warmup():
    s = WarmupCosine(base_lr=2e-3, warmup_steps=5, total_steps=50)
    values = [s(i) for i in range(5, 60)]
    assert all(a >= b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"base_lr": 0.0}, "base_lr"), ({"warmup_steps": -1}, "warmup_steps"), ({"total_steps": 5}, "total_steps")],
)
def test_bad_values_name_the_field(kwargs, field):
    args = {"base_lr": 1e-3, "warmup_steps": 5, "total_steps": 50} | kwargs
    with pytest.raises(ValueError, match=field):
        WarmupCosine(**args)
