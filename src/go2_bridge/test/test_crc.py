"""CRC of the LowCmd: the published check values and fast == reference on random words."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from go2_bridge.crc import crc32_core, crc32_mpeg2, crc32_words_reference
from go2_bridge.lowcmd import LOWCMD_SIZE, LowCmdData, lowcmd_crc, pack_lowcmd, stop_all_lowcmd


def test_struct_is_812_bytes():
    assert len(pack_lowcmd(LowCmdData())) == LOWCMD_SIZE == 812


def test_all_zero_lowcmd_check_value():
    assert lowcmd_crc(LowCmdData()) == 0x4B5A4880


def test_stopped_motors_check_value():
    # head FE EF, level 0xFF, 20 motors mode 1 with q = PosStopF, dq = VelStopF, the rest 0.
    assert lowcmd_crc(stop_all_lowcmd(LowCmdData())) == 0x06E577CD


def test_reference_loop_reproduces_check_values():
    words = np.frombuffer(pack_lowcmd(LowCmdData())[:808], dtype="<u4")
    assert crc32_words_reference(words) == 0x4B5A4880


def test_crc32_mpeg2_catalogue_check_value():
    # The CRC catalogue's check value of CRC-32/MPEG-2 over ASCII "123456789".
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7


def test_words_enter_most_significant_byte_first():
    words = [0x31323334, 0x35363738]  # "1234" "5678" as big-endian words
    le_bytes = b"".join(w.to_bytes(4, "little") for w in words)
    assert crc32_core(le_bytes) == crc32_mpeg2(b"12345678") == crc32_words_reference(words)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), min_size=0, max_size=40))
def test_fast_equals_reference(words):
    data = np.asarray(words, dtype="<u4").tobytes()
    assert crc32_core(data) == crc32_words_reference(words)


def test_crc_changes_with_any_command_bit():
    base = LowCmdData()
    changed = LowCmdData()
    changed.motor_cmd[7].kd = 0.5
    assert lowcmd_crc(base) != lowcmd_crc(changed)


def test_crc_ignores_the_crc_field():
    a = LowCmdData()
    b = LowCmdData()
    b.crc = 0xDEADBEEF
    assert lowcmd_crc(a) == lowcmd_crc(b)
