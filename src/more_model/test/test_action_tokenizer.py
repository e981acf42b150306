"""ActionTokenizer: round trip within half a bin, edge bins, NaN/out-of-range handling, bin <-> token ids."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from more_common.action_contract import DEFAULT_HIGH, DEFAULT_LOW, GAITS, ActionSpec, InvalidActionError
from more_model.action_tokenizer import ActionTokenizer
from more_model.tiny_backbone import build_tiny_tokenizer

SPEC = ActionSpec()
IDS = [1000 + 3 * b for b in range(256)]  # any distinct ids: the class must not assume a layout
TOK = ActionTokenizer(SPEC, IDS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=12, max_size=12))
def test_round_trip_is_within_half_a_bin(fractions):
    low, high = np.array(DEFAULT_LOW), np.array(DEFAULT_HIGH)
    action = low + np.array(fractions) * (high - low)
    decoded = TOK.decode(TOK.encode(action))
    half_bin = (high - low) / 256 / 2
    assert np.all(np.abs(decoded - action) <= half_bin + 1e-12)


def test_edge_bins():
    low, high = np.array(DEFAULT_LOW), np.array(DEFAULT_HIGH)
    width = (high - low) / 256
    assert (TOK.to_bins(low) == 0).all()
    assert (TOK.to_bins(high) == 255).all()  # the upper bound belongs to the last bin
    assert (TOK.to_bins(low + width * 0.999) == 0).all()
    assert (TOK.to_bins(low + width * 1.001) == 1).all()
    np.testing.assert_allclose(TOK.from_bins(np.zeros(12, np.int64)), low + width / 2)
    np.testing.assert_allclose(TOK.from_bins(np.full(12, 255)), high - width / 2)


def test_out_of_range_is_clipped_to_the_edge_bins():
    low, high = np.array(DEFAULT_LOW), np.array(DEFAULT_HIGH)
    assert (TOK.to_bins(low - 10.0) == 0).all()
    assert (TOK.to_bins(high + 10.0) == 255).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_naming_the_dim(bad):
    action = np.array(SPEC.low) + 0.1
    action[2] = bad
    with pytest.raises(InvalidActionError, match="wz"):
        TOK.encode(action)


def test_bins_map_to_token_ids_and_back():
    bins = np.arange(24).reshape(2, 12) * 10
    ids = TOK.bins_to_token_ids(bins)
    np.testing.assert_array_equal(ids, 1000 + 3 * bins)
    np.testing.assert_array_equal(TOK.token_ids_to_bins(ids), bins)


def test_non_bin_tokens_and_bad_bins_raise():
    with pytest.raises(InvalidActionError, match="not action bin tokens"):
        TOK.token_ids_to_bins([1000, 1001])
    with pytest.raises(InvalidActionError, match=r"\[0, 256\)"):
        TOK.bins_to_token_ids([256])
    with pytest.raises(InvalidActionError, match="integers"):
        TOK.bins_to_token_ids([1.0])


def test_constructor_checks_ids():
    with pytest.raises(ValueError, match="256 bin token ids"):
        ActionTokenizer(SPEC, range(255))
    with pytest.raises(ValueError, match="distinct"):
        ActionTokenizer(SPEC, [5] * 256)


def test_gait_is_snapped_for_the_controller():
    action = np.array(SPEC.low) + 0.01
    action[3:6] = (0.47, 0.04, 0.97)  # nearest trained gait: trot (0.5, 0, 0), circular distance
    out = TOK.for_controller(TOK.decode(TOK.encode(action)))
    assert tuple(out[3:6]) == GAITS["trot"]


def test_from_tokenizer_uses_the_tokens_of_the_bin_strings():
    tokenizer = build_tiny_tokenizer()
    tok = ActionTokenizer.from_tokenizer(tokenizer, SPEC)
    assert tokenizer.convert_ids_to_tokens(list(tok.bin_token_ids)) == [str(b) for b in range(256)]


def test_from_tokenizer_requires_the_bin_strings():
    class NoNumbers:
        def get_vocab(self):
            return {"a": 0}

    with pytest.raises(ValueError, match=r"'0'\.\.'255'"):
        ActionTokenizer.from_tokenizer(NoNumbers(), SPEC)


def test_dict_round_trip_keeps_bounds_from_data():
    spec = ActionSpec.from_data(np.random.default_rng(0).uniform(-0.5, 0.5, (100, 12)))
    tok = ActionTokenizer(spec, IDS)
    again = ActionTokenizer.from_dict(tok.to_dict())
    assert again.spec == spec and again.bin_token_ids == tok.bin_token_ids
