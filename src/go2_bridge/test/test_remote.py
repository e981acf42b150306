"""Remote bytes: field offsets, key bits, combo edges."""

import struct

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


def test_combo_fires_once_on_rising_edge():
    det = ComboDetector()
    assert det.update(keys_of("L2")) is None
    assert det.update(keys_of("L2", "A")) == "stand_up"
    assert det.update(keys_of("L2", "A")) is None  # held: no repeat
    assert det.update(0) is None
    assert det.update(keys_of("L2", "A")) == "stand_up"


def test_damp_wins_over_other_combos():
    det = ComboDetector()
    assert det.update(keys_of("L2", "A", "B")) == "damp"
