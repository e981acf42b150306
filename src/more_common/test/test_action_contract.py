"""The action contract: bin arithmetic against hand-computed values, round trips, gait snapping, bad input."""

import json
import math

import numpy as np
import pytest

from more_common.action_contract import (
    ACTION_NAMES,
    DEFAULT_HIGH,
    DEFAULT_LOW,
    DEFAULT_SPEC,
    GAITS,
    INDEX,
    NUM_BINS,
    QUARD_ORDER,
    ActionSpec,
    InvalidActionError,
    action_from_mapping,
    action_to_mapping,
    snap_gait,
    stand_command,
)


def test_order_is_the_papers():
    assert ACTION_NAMES[:3] == ("vx", "vy", "wz")
    assert ACTION_NAMES[-1] == "terminate"
    assert len(ACTION_NAMES) == 12 and len(set(ACTION_NAMES)) == 12
    # QUARD stores terminate first, then the rest in paper order.
    assert [ACTION_NAMES[i] for i in QUARD_ORDER][:2] == ["terminate", "vx"]
    assert sorted(QUARD_ORDER) == list(range(12))


def test_bins_match_hand_computed_values():
    # vx in [-1, 1], 256 bins of width 2/256 = 0.0078125.
    action = stand_command()
    action[INDEX["vx"]] = 0.0  # (0 - -1) / 2 * 256 = 128.0 -> bin 128
    action[INDEX["step_frequency"]] = 2.5  # (2.5 - 2) / 2 * 256 = 64.0 -> bin 64
    action[INDEX["body_height"]] = -0.25  # lower bound -> bin 0
    action[INDEX["pitch"]] = 0.4  # upper bound -> last bin (255), not 256
    bins = DEFAULT_SPEC.to_bins(action)
    assert bins[INDEX["vx"]] == 128
    assert bins[INDEX["step_frequency"]] == 64
    assert bins[INDEX["body_height"]] == 0
    assert bins[INDEX["pitch"]] == 255
    centres = DEFAULT_SPEC.from_bins(bins)
    assert centres[INDEX["vx"]] == pytest.approx(-1 + 128.5 * 2 / 256)  # 0.00390625
    assert centres[INDEX["body_height"]] == pytest.approx(-0.25 + 0.5 * 0.4 / 256)
    assert centres[INDEX["pitch"]] == pytest.approx(0.4 - 0.5 * 0.8 / 256)


def test_round_trip_within_half_a_bin():
    rng = np.random.default_rng(0)
    low, high = np.array(DEFAULT_LOW), np.array(DEFAULT_HIGH)
    actions = rng.uniform(low, high, size=(5000, 12))
    decoded = DEFAULT_SPEC.from_bins(DEFAULT_SPEC.to_bins(actions))
    err = np.abs(decoded - actions)
    assert (err <= DEFAULT_SPEC.bin_width / 2 + 1e-12).all()
    # and bins of bin centres are the same bins (idempotent)
    bins = rng.integers(0, NUM_BINS, size=(100, 12))
    assert (DEFAULT_SPEC.to_bins(DEFAULT_SPEC.from_bins(bins)) == bins).all()


def test_out_of_range_is_clipped_and_reported():
    action = stand_command()
    action[INDEX["vx"]] = 3.0
    action[INDEX["stance_width"]] = -1.0
    assert DEFAULT_SPEC.out_of_range(action) == ["vx", "stance_width"]
    bins = DEFAULT_SPEC.to_bins(action)
    assert bins[INDEX["vx"]] == NUM_BINS - 1
    assert bins[INDEX["stance_width"]] == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_raise_naming_the_dim(bad):
    action = stand_command()
    action[INDEX["wz"]] = bad
    with pytest.raises(InvalidActionError, match="wz"):
        DEFAULT_SPEC.to_bins(action)
    with pytest.raises(InvalidActionError, match="wz"):
        DEFAULT_SPEC.for_controller(action)


def test_bad_shapes_and_bins_raise():
    with pytest.raises(InvalidActionError, match="12"):
        DEFAULT_SPEC.to_bins(np.zeros(11))
    with pytest.raises(InvalidActionError, match="256"):
        DEFAULT_SPEC.from_bins(np.full(12, 256))
    with pytest.raises(InvalidActionError, match="integers"):
        DEFAULT_SPEC.from_bins(np.zeros(12, dtype=np.float32))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((0.0, 0.0, 0.0), "pronk"),
        ((0.5, 0.0, 0.0), "trot"),
        ((0.0, 0.5, 0.0), "bound"),
        ((0.0, 0.0, 0.5), "pace"),
        ((0.45, 0.05, 0.02), "trot"),
        ((0.96, 0.02, 0.97), "pronk"),  # circular: 0.96 is 0.04 from 0
        ((0.1, 0.4, 0.05), "bound"),
    ],
)
def test_snap_gait(values, expected):
    name, gait = snap_gait(*values)
    assert name == expected
    assert gait == GAITS[expected]


def test_snap_gait_brute_force_agrees():
    # Reference: distances computed by brute force over a grid.
    rng = np.random.default_rng(1)
    for phase, offset, bound in rng.uniform(0, 1, size=(300, 3)):
        dists = {}
        for name, g in GAITS.items():
            d = 0.0
            for v, t in zip((phase, offset, bound), g, strict=True):
                diff = abs(v - t)
                d += min(diff, 1 - diff) ** 2
            dists[name] = d
        assert snap_gait(phase, offset, bound)[0] == min(dists, key=dists.get)


def test_for_controller_snaps_and_binarises():
    action = action_from_mapping({"gait_phase": 0.47, "gait_offset": 0.03, "terminate": 0.7, "vx": 5.0})
    out = DEFAULT_SPEC.for_controller(action)
    assert tuple(out[3:6]) == GAITS["trot"]
    assert out[INDEX["terminate"]] == 1.0
    assert out[INDEX["vx"]] == 1.0


def test_from_data_and_serialisation_round_trip():
    rng = np.random.default_rng(2)
    data = rng.uniform(np.array(DEFAULT_LOW) / 2, np.array(DEFAULT_HIGH) / 2, size=(200, 12))
    data[:, INDEX["terminate"]] = 0.0  # never varies -> keeps the default bounds
    spec = ActionSpec.from_data(data)
    assert spec.low[INDEX["vx"]] == pytest.approx(data[:, 0].min())
    assert spec.high[INDEX["vx"]] == pytest.approx(data[:, 0].max())
    assert (spec.low[INDEX["terminate"]], spec.high[INDEX["terminate"]]) == (0.0, 1.0)
    again = ActionSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["num_bins"] == 256


def test_invalid_specs_name_the_problem():
    low = list(DEFAULT_LOW)
    low[INDEX["pitch"]] = 1.0
    with pytest.raises(ValueError, match="pitch"):
        ActionSpec(low=tuple(low))
    with pytest.raises(ValueError, match="unknown"):
        ActionSpec.from_dict({**DEFAULT_SPEC.to_dict(), "extra": 1})
    with pytest.raises(InvalidActionError, match="bogus"):
        action_from_mapping({"bogus": 1.0})


def test_mapping_round_trip():
    action = np.arange(12, dtype=float) / 10
    assert np.array_equal(action_from_mapping(action_to_mapping(action)), action)
