"""Remote bytes: field offsets, key bits, combo edges."""

import struct

import pytest

from go2_bridge.remote import ComboDetector, encode_remote, keys_of, parse_remote


def test_parse_hand_built_bytes():
    raw = bytearray(40)
    raw[2:4] = (1 << 8 | 1 << 5).to_bytes(2, "little")  # A + L2
    raw[4:8] = struct.pack("<f", 0.25)  # lx
    raw[8:12] = struct.pack("<f", -0.5)  # rx
    raw[12:16] = struct.pack("<f", 0.75)  # ry
    raw[20:24] = struct.pack("<f", -1.0)  # ly
    r = parse_remote(bytes(raw))
    assert (r.lx, r.rx, r.ry, r.ly) == (0.25, -0.5, 0.75, -1.0)
    assert r.held("A") and r.held("L2") and not r.held("B")


def test_encode_is_inverse_of_parse():
    r = parse_remote(encode_remote(keys_of("X", "up"), lx=0.5, ly=-0.5, rx=0.125, ry=1.0))
    assert r.held("X") and r.held("up") and not r.held("left")
    assert (r.lx, r.ly, r.rx, r.ry) == (0.5, -0.5, 0.125, 1.0)


def test_key_bit_positions():
    assert keys_of("R1") == 1 and keys_of("L2") == 32 and keys_of("A") == 256 and keys_of("left") == 1 << 15


def test_garbage_is_harmless():
    r = parse_remote(b"\xff" * 3)  # short: zero-padded
    assert r.lx == 0.0
    nan = bytearray(40)
    nan[4:8] = struct.pack("<f", float("nan"))
    assert parse_remote(bytes(nan)).lx == 0.0


def frame(*buttons, lx=0.0):
    return parse_remote(encode_remote(keys_of(*buttons), lx=lx))


def hold(det, n, *buttons):
    """Feed n identical frames; the requests that fired."""
    return [r for r in (det.update(frame(*buttons)) for _ in range(n)) if r is not None]


def test_combo_fires_once_after_being_held_for_hold_frames():
    det = ComboDetector(hold_frames=5, damp_hold_frames=2, reset_hold_frames=20)
    assert hold(det, 4, "L2", "A") == []
    assert det.update(frame("L2", "A")) == "stand_up"  # the 5th consecutive frame
    assert hold(det, 50, "L2", "A") == []  # held on: no repeat
    assert hold(det, 1) == []
    assert hold(det, 5, "L2", "A") == ["stand_up"]  # released and pressed again


def test_motion_combos_need_exactly_their_buttons():
    det = ComboDetector(hold_frames=5, damp_hold_frames=2, reset_hold_frames=20)
    assert hold(det, 50, "L2", "A", "up") == []  # an extra button: not stand_up
    assert hold(det, 50, "L1", "A", "R1") == []
    assert hold(det, 50, "L2", "X", "Y") == []


def test_damp_fires_quickly_whatever_else_is_held():
    det = ComboDetector(hold_frames=5, damp_hold_frames=2, reset_hold_frames=20)
    assert det.update(frame("L2", "B", "A", "X")) is None
    assert det.update(frame("L2", "B", "A", "X")) == "damp"


def test_reset_needs_the_long_hold():
    det = ComboDetector(hold_frames=5, damp_hold_frames=2, reset_hold_frames=20)
    assert hold(det, 19, "L2", "X") == []
    assert hold(det, 1, "L2", "X") == ["reset"]


def test_an_interruption_restarts_the_count():
    det = ComboDetector(hold_frames=5, damp_hold_frames=2, reset_hold_frames=20)
    assert hold(det, 4, "L2", "A") == []
    det.invalid()  # a LowState dropped for its CRC
    assert hold(det, 4, "L2", "A") == []
    assert det.update(frame("L2", "A", lx=7.5)) is None  # implausible stick: not a valid frame either
    assert det.rejected == 1
    assert hold(det, 4, "L2", "A") == []
    assert hold(det, 1, "L2", "A") == ["stand_up"]


def test_defaults_in_time_at_500_hz():
    det = ComboDetector()
    assert det.frames == {"damp": 10, "stand_up": 50, "activate": 50, "reset": 500}  # 20 ms, 100 ms, 1 s


def test_plausibility_of_sticks():
    assert frame(lx=1.0).plausible and frame(lx=-1.0).plausible
    assert not frame(lx=1.5).plausible
    nan = bytearray(encode_remote())
    nan[20:24] = struct.pack("<f", float("inf"))  # ly
    assert not parse_remote(bytes(nan)).plausible


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="hold_frames must be an integer >= 1, got 0"):
        ComboDetector(hold_frames=0)
    with pytest.raises(ValueError, match="reset_hold_frames"):
        ComboDetector(hold_frames=50, reset_hold_frames=10)
    with pytest.raises(ValueError, match="unknown remote request"):
        ComboDetector(combos={"jump": ("A",)})


def test_damp_wins_over_other_combos():
    det = ComboDetector(
        hold_frames=2, damp_hold_frames=2, reset_hold_frames=2, combos={"damp": ("L2",), "reset": ("L2",)}
    )
    assert hold(det, 2, "L2") == ["damp"]
