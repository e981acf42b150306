"""image_to_rgb: every malformed sensor_msgs/Image field is refused by name; good ones decode exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from more_vla_policy.policy_core import ImageError, RawImage, image_to_rgb, rgb_to_raw


def _rgb(h=4, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_round_trip_for_every_accepted_encoding(encoding):
    rgb = _rgb()
    np.testing.assert_array_equal(image_to_rgb(rgb_to_raw(rgb, encoding=encoding)), rgb)


def test_bgr_is_reordered_by_hand():
    # One pixel stored blue-first: bytes (10, 20, 30) mean r=30, g=20, b=10.
    img = RawImage("bgr8", 1, 1, 3, bytes([10, 20, 30]))
    assert image_to_rgb(img).tolist() == [[[30, 20, 10]]]


def test_row_padding_is_dropped():
    # 2x2 rgb8 with step 8 (2 padding bytes per row).
    data = bytes([1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99])
    out = image_to_rgb(RawImage("rgb8", 2, 2, 8, data))
    assert out.tolist() == [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]


@pytest.mark.parametrize(
    ("image", "needle"),
    [
        (RawImage("mono8", 2, 2, 2, bytes(4)), "unsupported encoding 'mono8'"),
        (RawImage("16UC1", 2, 2, 4, bytes(8)), "unsupported encoding"),
        (RawImage("rgb8", 0, 2, 6, b""), "bad size 2x0"),
        (RawImage("rgb8", 2, -1, 6, bytes(12)), "bad size -1x2"),
        (RawImage("rgb8", 9000, 1, 3, bytes(27000)), "bad size 1x9000"),
        (RawImage("rgb8", 2, 2, 5, bytes(10)), "step 5 is shorter than a row"),
        (RawImage("rgb8", 2, 2, 6, bytes(11)), "data length 11 != step * height = 6 * 2 = 12"),
        (RawImage("rgb8", 2, 2, 6, bytes(13)), "data length 13"),
        (RawImage("rgb8", 2, 2, 6, b""), "data length 0"),
    ],
)
def test_malformed_images_are_refused_by_field(image, needle):
    with pytest.raises(ImageError, match=needle.replace("*", r"\*").replace("(", r"\(")):
        image_to_rgb(image)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    pad=st.integers(0, 5),
    encoding=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8"]),
    extra=st.integers(-3, 3),
)
def test_length_rule_matches_a_brute_force_reference(h, w, pad, encoding, extra):
    channels = 4 if encoding.endswith("a8") else 3
    step = w * channels + pad
    data = bytes(range(256)) * ((step * h + extra) // 256 + 1)
    data = data[: max(step * h + extra, 0)]
    image = RawImage(encoding, h, w, step, data)
    if extra != 0:
        with pytest.raises(ImageError, match="data length"):
            image_to_rgb(image)
        return
    out = image_to_rgb(image)
    # Reference: walk the bytes pixel by pixel.
    for y in range(h):
        for x in range(w):
            px = data[y * step + x * channels : y * step + x * channels + 3]
            expect = list(px[::-1]) if encoding.startswith("bgr") else list(px)
            assert out[y, x].tolist() == expect
