"""unitree_go/LowCmd as the Go2 sees it: the 812-byte C struct, its CRC, and filling a message.

Works on any object with LowCmd's attributes (the ROS message, or `LowCmdData` below for code and
tests without ROS). Layout (little endian, natural alignment; offsets in bytes):
    0 head[2] u8 | 2 level_flag u8 | 3 frame_reserve u8 | 4 sn[2] u32 | 12 version[2] u32
   20 bandwidth u16 | 22 pad[2] | 24 motor_cmd[20] (36 bytes each: mode u8, pad[3], q dq tau kp kd f32,
   reserve[3] u32) | 744 bms_cmd (off u8, reserve[3] u8) | 748 wireless_remote[40] u8 | 788 led[12] u8
  800 fan[2] u8 | 802 gpio u8 | 803 pad | 804 reserve u32 | 808 crc u32  -> 812 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from go2_bridge.crc import crc32_core
from go2_bridge.go2 import HEAD, LEVEL_LOW, MODE_SERVO, MODE_STOP, NUM_MOTOR_SLOTS, NUM_MOTORS, POS_STOP_F, VEL_STOP_F

_HEADER = "2BBB2I2IH2x"
_MOTOR = "B3x5f3I"
_TAIL = "B3B40B12B2BBxII"
LOWCMD_STRUCT = struct.Struct("<" + _HEADER + _MOTOR * NUM_MOTOR_SLOTS + _TAIL)
LOWCMD_SIZE = 812
CRC_WORDS = LOWCMD_SIZE // 4 - 1  # 202: every word but the crc itself
assert LOWCMD_STRUCT.size == LOWCMD_SIZE


@dataclass
class MotorCmdData:
    mode: int = 0
    q: float = 0.0
    dq: float = 0.0
    tau: float = 0.0
    kp: float = 0.0
    kd: float = 0.0
    reserve: list[int] = field(default_factory=lambda: [0, 0, 0])


@dataclass
class BmsCmdData:
    off: int = 0
    reserve: list[int] = field(default_factory=lambda: [0, 0, 0])


@dataclass
class LowCmdData:
    """A ROS-free LowCmd with the message's field names (for tests and tools)."""

    head: list[int] = field(default_factory=lambda: [0, 0])
    level_flag: int = 0
    frame_reserve: int = 0
    sn: list[int] = field(default_factory=lambda: [0, 0])
    version: list[int] = field(default_factory=lambda: [0, 0])
    bandwidth: int = 0
    motor_cmd: list[MotorCmdData] = field(default_factory=lambda: [MotorCmdData() for _ in range(NUM_MOTOR_SLOTS)])
    bms_cmd: BmsCmdData = field(default_factory=BmsCmdData)
    wireless_remote: list[int] = field(default_factory=lambda: [0] * 40)
    led: list[int] = field(default_factory=lambda: [0] * 12)
    fan: list[int] = field(default_factory=lambda: [0, 0])
    gpio: int = 0
    reserve: int = 0
    crc: int = 0


@dataclass
class MotorCommands:
    """Commands for the 12 leg motors (SDK order). Torque = kp (q - q_m) + kd (dq - dq_m) + tau."""

    q: np.ndarray
    dq: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau: np.ndarray
    mode: int = MODE_SERVO

    @classmethod
    def zero_torque(cls, q: np.ndarray | None = None) -> MotorCommands:
        z = np.zeros(NUM_MOTORS)
        return cls(
            q=z.copy() if q is None else np.asarray(q, dtype=np.float64).copy(),
            dq=z.copy(),
            kp=z.copy(),
            kd=z.copy(),
            tau=z.copy(),
        )

    def copy(self) -> MotorCommands:
        return MotorCommands(self.q.copy(), self.dq.copy(), self.kp.copy(), self.kd.copy(), self.tau.copy(), self.mode)


def _values(cmd: Any) -> list[Any]:
    vals: list[Any] = [*cmd.head, cmd.level_flag, cmd.frame_reserve, *cmd.sn, *cmd.version, cmd.bandwidth]
    for m in cmd.motor_cmd:
        vals += [m.mode, m.q, m.dq, m.tau, m.kp, m.kd, *m.reserve]
    vals += [cmd.bms_cmd.off, *cmd.bms_cmd.reserve, *cmd.wireless_remote, *cmd.led, *cmd.fan, cmd.gpio]
    vals += [cmd.reserve, cmd.crc]
    return [int(v) if isinstance(v, (np.integer, bool)) else v for v in vals]


def pack_lowcmd(cmd: Any) -> bytes:
    """The 812 bytes the robot checksums (including whatever `crc` currently holds)."""
    return LOWCMD_STRUCT.pack(*_values(cmd))


def lowcmd_crc(cmd: Any) -> int:
    """The CRC the robot expects in `cmd.crc`."""
    return crc32_core(pack_lowcmd(cmd)[: CRC_WORDS * 4])


def unpack_lowcmd(data: bytes) -> LowCmdData:
    """Inverse of pack_lowcmd (floats come back as float32 values)."""
    v = list(LOWCMD_STRUCT.unpack(data))
    out = LowCmdData(head=v[0:2], level_flag=v[2], frame_reserve=v[3], sn=v[4:6], version=v[6:8], bandwidth=v[8])
    i = 9
    for k in range(NUM_MOTOR_SLOTS):
        mode, q, dq, tau, kp, kd, r0, r1, r2 = v[i : i + 9]
        out.motor_cmd[k] = MotorCmdData(mode, q, dq, tau, kp, kd, [r0, r1, r2])
        i += 9
    out.bms_cmd = BmsCmdData(v[i], v[i + 1 : i + 4])
    i += 4
    out.wireless_remote = v[i : i + 40]
    i += 40
    out.led = v[i : i + 12]
    i += 12
    out.fan = v[i : i + 2]
    i += 2
    out.gpio, out.reserve, out.crc = v[i], v[i + 1], v[i + 2]
    return out


def init_lowcmd(cmd: Any) -> Any:
    """Set the constant header (FE EF, low level) and stop every motor slot; returns `cmd`."""
    cmd.head[0], cmd.head[1] = HEAD
    cmd.level_flag = LEVEL_LOW
    for m in cmd.motor_cmd:
        m.mode = MODE_STOP
        m.q = m.dq = m.tau = m.kp = m.kd = 0.0
    return cmd


def fill_lowcmd(cmd: Any, commands: MotorCommands) -> Any:
    """Write the 12 leg commands into `cmd` (slots 12..19 stay stopped) and set its CRC; returns `cmd`.

    The values must already be safe (see safety.limit_commands); this only converts and checksums.
    """
    for i in range(NUM_MOTORS):
        m = cmd.motor_cmd[i]
        m.mode = commands.mode
        m.q = float(commands.q[i])
        m.dq = float(commands.dq[i])
        m.tau = float(commands.tau[i])
        m.kp = float(commands.kp[i])
        m.kd = float(commands.kd[i])
    cmd.crc = lowcmd_crc(cmd)
    return cmd


def motor_commands_of(cmd: Any) -> MotorCommands:
    """Read the 12 leg commands back out of a LowCmd (for the simulator and tests)."""
    ms = cmd.motor_cmd[:NUM_MOTORS]
    return MotorCommands(
        q=np.asarray([m.q for m in ms], dtype=np.float64),
        dq=np.asarray([m.dq for m in ms], dtype=np.float64),
        kp=np.asarray([m.kp for m in ms], dtype=np.float64),
        kd=np.asarray([m.kd for m in ms], dtype=np.float64),
        tau=np.asarray([m.tau for m in ms], dtype=np.float64),
        mode=int(ms[0].mode),
    )


def stop_all_lowcmd(cmd: Any) -> Any:
    """Every slot mode 1 with q = PosStopF, dq = VelStopF, zero gains (the SDK's initial command)."""
    init_lowcmd(cmd)
    for m in cmd.motor_cmd:
        m.mode = MODE_SERVO
        m.q = POS_STOP_F
        m.dq = VEL_STOP_F
    return cmd
