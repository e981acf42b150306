"""unitree_go/LowState as the Go2 sends it: the 1180-byte C struct and its CRC.

The Go2 checksums LowState the way it checks LowCmd (crc.py): CRC-32/MPEG-2 over the struct's uint32
words except the last (`crc`), i.e. 1180 / 4 - 1 = 294 words. The layout follows the message definition
(unitree_go/msg/LowState.msg and the nested IMUState, MotorState, BmsState) with natural alignment,
little endian, padding bytes zero (as Unitree's own packing of LowCmd does). Offsets in bytes:
      0 head[2] u8 | 2 level_flag u8 | 3 frame_reserve u8 | 4 sn[2] u32 | 12 version[2] u32
     20 bandwidth u16 | 22 pad[2]
     24 imu_state (56): quaternion[4] f32, gyroscope[3], accelerometer[3], rpy[3], temperature i8, pad[3]
     80 motor_state[20] (48 each): mode u8, pad[3], q dq ddq tau_est q_raw dq_raw ddq_raw f32,
        temperature i8, pad[3], lost u32, reserve[2] u32
   1040 bms_state (44): version_high version_low status soc u8, current i32, cycle u16, bq_ntc[2] i8,
        mcu_ntc[2] i8, cell_vol[15] u16
   1084 foot_force[4] i16 | 1092 foot_force_est[4] i16 | 1100 tick u32 | 1104 wireless_remote[40] u8
   1144 bit_flag u8 | 1145 pad[3] | 1148 adc_reel f32 | 1152 temperature_ntc1 i8 | 1153 temperature_ntc2 i8
   1154 pad[2] | 1156 power_v f32 | 1160 power_a f32 | 1164 fan_frequency[4] u16 | 1172 reserve u32
   1176 crc u32 -> 1180 bytes.
Works on the ROS message or `LowStateData` (a ROS-free look-alike for tests and the simulator).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from go2_bridge.crc import crc32_core
from go2_bridge.go2 import NUM_MOTOR_SLOTS

_HEADER = "2BBB2I2IH2x"
_IMU = "4f3f3f3fb3x"
_MOTOR = "B3x7fb3xI2I"
_BMS = "4BiH2b2b15H"
_TAIL = "4h4hI40BB3xf2b2x2f4HII"
LOWSTATE_STRUCT = struct.Struct("<" + _HEADER + _IMU + _MOTOR * NUM_MOTOR_SLOTS + _BMS + _TAIL)
LOWSTATE_SIZE = 1180
LOWSTATE_CRC_WORDS = LOWSTATE_SIZE // 4 - 1  # 294: every word but the crc itself
assert LOWSTATE_STRUCT.size == LOWSTATE_SIZE


@dataclass
class IMUStateData:
    quaternion: list[float] = field(default_factory=lambda: [0.0] * 4)
    gyroscope: list[float] = field(default_factory=lambda: [0.0] * 3)
    accelerometer: list[float] = field(default_factory=lambda: [0.0] * 3)
    rpy: list[float] = field(default_factory=lambda: [0.0] * 3)
    temperature: int = 0


@dataclass
class MotorStateData:
    mode: int = 0
    q: float = 0.0
    dq: float = 0.0
    ddq: float = 0.0
    tau_est: float = 0.0
    q_raw: float = 0.0
    dq_raw: float = 0.0
    ddq_raw: float = 0.0
    temperature: int = 0
    lost: int = 0
    reserve: list[int] = field(default_factory=lambda: [0, 0])


@dataclass
class BmsStateData:
    version_high: int = 0
    version_low: int = 0
    status: int = 0
    soc: int = 0
    current: int = 0
    cycle: int = 0
    bq_ntc: list[int] = field(default_factory=lambda: [0, 0])
    mcu_ntc: list[int] = field(default_factory=lambda: [0, 0])
    cell_vol: list[int] = field(default_factory=lambda: [0] * 15)


@dataclass
class LowStateData:
    """A ROS-free LowState with the message's field names (for tests and the simulator's tests)."""

    head: list[int] = field(default_factory=lambda: [0, 0])
    level_flag: int = 0
    frame_reserve: int = 0
    sn: list[int] = field(default_factory=lambda: [0, 0])
    version: list[int] = field(default_factory=lambda: [0, 0])
    bandwidth: int = 0
    imu_state: IMUStateData = field(default_factory=IMUStateData)
    motor_state: list[MotorStateData] = field(default_factory=lambda: [MotorStateData() for _ in range(20)])
    bms_state: BmsStateData = field(default_factory=BmsStateData)
    foot_force: list[int] = field(default_factory=lambda: [0] * 4)
    foot_force_est: list[int] = field(default_factory=lambda: [0] * 4)
    tick: int = 0
    wireless_remote: list[int] = field(default_factory=lambda: [0] * 40)
    bit_flag: int = 0
    adc_reel: float = 0.0
    temperature_ntc1: int = 0
    temperature_ntc2: int = 0
    power_v: float = 0.0
    power_a: float = 0.0
    fan_frequency: list[int] = field(default_factory=lambda: [0] * 4)
    reserve: int = 0
    crc: int = 0


def _seq(x: Any) -> Any:
    """A message array as a sequence struct can pack (ROS gives numpy arrays: tolist is the fast way out)."""
    return x.tolist() if hasattr(x, "tolist") else x


def _values(msg: Any) -> list[Any]:
    vals: list[Any] = [*_seq(msg.head), msg.level_flag, msg.frame_reserve, *_seq(msg.sn), *_seq(msg.version)]
    vals.append(msg.bandwidth)
    imu = msg.imu_state
    vals += [*_seq(imu.quaternion), *_seq(imu.gyroscope), *_seq(imu.accelerometer), *_seq(imu.rpy), imu.temperature]
    for m in msg.motor_state:
        vals += [m.mode, m.q, m.dq, m.ddq, m.tau_est, m.q_raw, m.dq_raw, m.ddq_raw, m.temperature, m.lost]
        vals += _seq(m.reserve)
    b = msg.bms_state
    vals += [b.version_high, b.version_low, b.status, b.soc, b.current, b.cycle]
    vals += [*_seq(b.bq_ntc), *_seq(b.mcu_ntc), *_seq(b.cell_vol)]
    vals += [*_seq(msg.foot_force), *_seq(msg.foot_force_est), msg.tick, *_seq(msg.wireless_remote)]
    vals += [msg.bit_flag, msg.adc_reel, msg.temperature_ntc1, msg.temperature_ntc2, msg.power_v, msg.power_a]
    vals += [*_seq(msg.fan_frequency), msg.reserve, msg.crc]
    return vals


def pack_lowstate(msg: Any) -> bytes:
    """The 1180 bytes the robot checksums (including whatever `crc` currently holds).

    Raises struct.error (or TypeError) for a look-alike whose fields do not fit the struct."""
    return LOWSTATE_STRUCT.pack(*_values(msg))


def lowstate_crc(msg: Any) -> int:
    """The CRC the robot puts in `msg.crc`."""
    return crc32_core(pack_lowstate(msg)[: LOWSTATE_CRC_WORDS * 4])


def lowstate_crc_ok(msg: Any) -> tuple[bool, int]:
    """(crc field matches, expected crc): one packing for both."""
    raw = pack_lowstate(msg)
    expected = crc32_core(raw[: LOWSTATE_CRC_WORDS * 4])
    return int(msg.crc) == expected, expected
