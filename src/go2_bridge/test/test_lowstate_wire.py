"""LowState as a C struct: layout derived independently (ctypes, natural alignment, from the .msg files),
CRC check values from a brute-force polynomial division written here, the ROS message packs the same."""

import ctypes as C
import itertools
import struct

import numpy as np
import pytest

from go2_bridge.lowcmd import LowCmdData, pack_lowcmd
from go2_bridge.lowstate_wire import LOWSTATE_CRC_WORDS, LOWSTATE_SIZE, LowStateData, lowstate_crc, pack_lowstate


# unitree_go/msg/{IMUState,MotorState,BmsState,LowState}.msg, field by field, as a C compiler lays them out.
class CIMUState(C.Structure):
    _fields_ = [
        ("quaternion", C.c_float * 4), ("gyroscope", C.c_float * 3), ("accelerometer", C.c_float * 3),
        ("rpy", C.c_float * 3), ("temperature", C.c_int8),
    ]  # fmt: skip


class CMotorState(C.Structure):
    _fields_ = [
        ("mode", C.c_uint8), ("q", C.c_float), ("dq", C.c_float), ("ddq", C.c_float), ("tau_est", C.c_float),
        ("q_raw", C.c_float), ("dq_raw", C.c_float), ("ddq_raw", C.c_float), ("temperature", C.c_int8),
        ("lost", C.c_uint32), ("reserve", C.c_uint32 * 2),
    ]  # fmt: skip


class CBmsState(C.Structure):
    _fields_ = [
        ("version_high", C.c_uint8), ("version_low", C.c_uint8), ("status", C.c_uint8), ("soc", C.c_uint8),
        ("current", C.c_int32), ("cycle", C.c_uint16), ("bq_ntc", C.c_int8 * 2), ("mcu_ntc", C.c_int8 * 2),
        ("cell_vol", C.c_uint16 * 15),
    ]  # fmt: skip


class CLowState(C.Structure):
    _fields_ = [
        ("head", C.c_uint8 * 2), ("level_flag", C.c_uint8), ("frame_reserve", C.c_uint8), ("sn", C.c_uint32 * 2),
        ("version", C.c_uint32 * 2), ("bandwidth", C.c_uint16), ("imu_state", CIMUState),
        ("motor_state", CMotorState * 20), ("bms_state", CBmsState), ("foot_force", C.c_int16 * 4),
        ("foot_force_est", C.c_int16 * 4), ("tick", C.c_uint32), ("wireless_remote", C.c_uint8 * 40),
        ("bit_flag", C.c_uint8), ("adc_reel", C.c_float), ("temperature_ntc1", C.c_int8),
        ("temperature_ntc2", C.c_int8), ("power_v", C.c_float), ("power_a", C.c_float),
        ("fan_frequency", C.c_uint16 * 4), ("reserve", C.c_uint32), ("crc", C.c_uint32),
    ]  # fmt: skip


POLY = 0x104C11DB7  # x^32 + ... : CRC-32's generator with its top bit


def crc_by_division(data: bytes) -> int:
    """The CRC as its definition: the message (uint32 words, each most significant bit first) times x^32,
    with the initial register 0xFFFFFFFF added onto its first 32 bits, modulo the generator over GF(2)."""
    words = struct.unpack(f"<{len(data) // 4}I", data)
    bits = int.from_bytes(b"".join(w.to_bytes(4, "big") for w in words), "big")
    n = 32 * len(words)
    rem = (bits << 32) ^ (0xFFFFFFFF << n)
    for shift in range(n - 1, -1, -1):
        if rem >> (shift + 32) & 1:
            rem ^= POLY << shift
    return rem


def _fill(c_obj, data_obj, values) -> None:
    """Give every field of the ctypes struct and the look-alike the same distinct value."""
    for name, ctype in c_obj._fields_:
        c_val = getattr(c_obj, name)
        if isinstance(c_val, C.Structure):
            _fill(c_val, getattr(data_obj, name), values)
        elif isinstance(c_val, C.Array) and isinstance(c_val[0], C.Structure):
            for c_item, d_item in zip(c_val, getattr(data_obj, name), strict=True):
                _fill(c_item, d_item, values)
        elif isinstance(c_val, C.Array):
            items = [_value(ctype._type_, values) for _ in range(len(c_val))]
            c_val[:] = items
            setattr(data_obj, name, items)
        else:
            v = _value(ctype, values)
            setattr(c_obj, name, v)
            setattr(data_obj, name, v)


def _value(ctype, values):
    k = next(values)
    if ctype is C.c_float:
        return float(np.float32(k * 0.37 - 11.0))
    signed = ctype in (C.c_int8, C.c_int16, C.c_int32)
    bits = 8 * C.sizeof(ctype)
    v = (k * 2654435761) % (1 << bits)  # spread over the type's range
    return v - (1 << bits) if signed and v >= 1 << (bits - 1) else v


# Check values (computed once by crc_by_division, written down here): the all-zero LowState, and example().
ZERO_CRC = 0x85F11EA6
EXAMPLE_CRC = 0x330979F5


def example():
    c, d = CLowState(), LowStateData()
    _fill(c, d, itertools.count(1))
    return c, d


def test_layout_and_size_follow_the_message_with_natural_alignment():
    assert C.sizeof(CLowState) == LOWSTATE_SIZE == 1180 and LOWSTATE_CRC_WORDS == 294
    offsets = {name: getattr(CLowState, name).offset for name, _ in CLowState._fields_}
    assert offsets["imu_state"] == 24 and offsets["motor_state"] == 80 and offsets["bms_state"] == 1040
    assert offsets["wireless_remote"] == 1104 and offsets["adc_reel"] == 1148 and offsets["crc"] == 1176
    c, d = example()
    assert pack_lowstate(d) == bytes(c)  # every field, every padding byte


def test_hand_placed_fields():
    d = LowStateData()
    d.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]
    d.motor_state[19].tau_est = -2.5
    d.wireless_remote[2] = 0x20  # L2
    d.power_a = 1.5
    d.crc = 0xDEADBEEF
    raw = pack_lowstate(d)
    assert struct.unpack_from("<f", raw, 24)[0] == 1.0
    assert struct.unpack_from("<f", raw, 80 + 19 * 48 + 16)[0] == -2.5
    assert raw[1104 + 2] == 0x20
    assert struct.unpack_from("<f", raw, 1160)[0] == 1.5
    assert struct.unpack_from("<I", raw, 1176)[0] == 0xDEADBEEF


def test_division_reproduces_the_published_lowcmd_check_value():
    # The same scheme as LowCmd: the reference implementation here must give the published 0x4B5A4880.
    assert crc_by_division(pack_lowcmd(LowCmdData())[:808]) == 0x4B5A4880


def test_check_values():
    zero = bytes(CLowState())
    assert crc_by_division(zero[:1176]) == ZERO_CRC
    assert lowstate_crc(LowStateData()) == ZERO_CRC
    c, d = example()
    assert crc_by_division(bytes(c)[:1176]) == EXAMPLE_CRC
    assert lowstate_crc(d) == EXAMPLE_CRC


def test_crc_covers_every_word_but_the_crc():
    _, d = example()
    base = lowstate_crc(d)
    d.crc ^= 0xFFFFFFFF
    assert lowstate_crc(d) == base
    d.temperature_ntc2 ^= 1  # byte 1153, inside the last CRC'd words
    assert lowstate_crc(d) != base


@pytest.mark.ros
def test_ros_message_packs_like_the_look_alike():
    from unitree_go.msg import LowState

    _, d = example()
    msg = LowState()
    for name in ("level_flag", "frame_reserve", "bandwidth", "tick", "bit_flag", "adc_reel", "temperature_ntc1",
                 "temperature_ntc2", "power_v", "power_a", "reserve", "crc"):  # fmt: skip
        setattr(msg, name, getattr(d, name))
    for name in ("head", "sn", "version", "foot_force", "foot_force_est", "wireless_remote", "fan_frequency"):
        getattr(msg, name)[:] = getattr(d, name)
    for name in ("quaternion", "gyroscope", "accelerometer", "rpy"):
        getattr(msg.imu_state, name)[:] = getattr(d.imu_state, name)
    msg.imu_state.temperature = d.imu_state.temperature
    for m, dm in zip(msg.motor_state, d.motor_state, strict=True):
        for name in ("mode", "q", "dq", "ddq", "tau_est", "q_raw", "dq_raw", "ddq_raw", "temperature", "lost"):
            setattr(m, name, getattr(dm, name))
        m.reserve[:] = dm.reserve
    for name in ("version_high", "version_low", "status", "soc", "current", "cycle"):
        setattr(msg.bms_state, name, getattr(d.bms_state, name))
    for name in ("bq_ntc", "mcu_ntc", "cell_vol"):
        getattr(msg.bms_state, name)[:] = getattr(d.bms_state, name)
    assert pack_lowstate(msg) == pack_lowstate(d)
    assert lowstate_crc(msg) == EXAMPLE_CRC
