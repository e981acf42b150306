"""LowCmd packing: byte offsets of the C struct, round trip, filling from motor commands."""

import struct

import numpy as np
import pytest

from go2_bridge.go2 import MODE_SERVO, MODE_STOP
from go2_bridge.lowcmd import (
    LowCmdData,
    MotorCommands,
    fill_lowcmd,
    init_lowcmd,
    lowcmd_crc,
    motor_commands_of,
    pack_lowcmd,
    unpack_lowcmd,
)


def _example():
    c = init_lowcmd(LowCmdData())
    c.sn = [1, 2]
    c.version = [3, 4]
    c.bandwidth = 0x1234
    c.motor_cmd[0].q = 1.5
    c.motor_cmd[19].kd = -2.0
    c.bms_cmd.off = 0xA5
    c.wireless_remote[39] = 7
    c.led[11] = 9
    c.fan = [5, 6]
    c.gpio = 3
    c.reserve = 0xCAFEBABE
    c.crc = 0x01020304
    return c


def test_byte_offsets_match_the_c_layout():
    raw = pack_lowcmd(_example())
    assert raw[0:2] == bytes([0xFE, 0xEF]) and raw[2] == 0xFF
    assert struct.unpack_from("<2I2IH", raw, 4) == (1, 2, 3, 4, 0x1234)
    # motor 0 starts at 24: mode byte, 3 pad bytes, then q
    assert struct.unpack_from("<f", raw, 24 + 4)[0] == 1.5
    # motor 19 kd at 24 + 19 * 36 + 4 + 16
    assert struct.unpack_from("<f", raw, 24 + 19 * 36 + 20)[0] == -2.0
    assert raw[744] == 0xA5  # bms_cmd.off
    assert raw[748 + 39] == 7  # wireless_remote[39]
    assert raw[788 + 11] == 9  # led[11]
    assert raw[800:802] == bytes([5, 6])
    assert raw[802] == 3
    assert struct.unpack_from("<II", raw, 804) == (0xCAFEBABE, 0x01020304)


def test_round_trip():
    c = _example()
    back = unpack_lowcmd(pack_lowcmd(c))
    assert pack_lowcmd(back) == pack_lowcmd(c)
    assert back.reserve == 0xCAFEBABE and back.motor_cmd[0].q == 1.5


def test_fill_sets_twelve_motors_and_crc():
    cmds = MotorCommands(
        q=np.linspace(-1, 1, 12), dq=np.zeros(12), kp=np.full(12, 20.0), kd=np.full(12, 0.5), tau=np.zeros(12)
    )
    c = fill_lowcmd(init_lowcmd(LowCmdData()), cmds)
    assert c.crc == lowcmd_crc(c)
    assert all(c.motor_cmd[i].mode == MODE_SERVO for i in range(12))
    assert all(c.motor_cmd[i].mode == MODE_STOP and c.motor_cmd[i].kp == 0 for i in range(12, 20))
    back = motor_commands_of(unpack_lowcmd(pack_lowcmd(c)))
    np.testing.assert_allclose(back.q, cmds.q, atol=1e-6)
    np.testing.assert_allclose(back.kp, 20.0)


@pytest.mark.ros
def test_ros_message_packs_like_the_dataclass():
    from unitree_go.msg import LowCmd

    cmds = MotorCommands(
        q=np.linspace(-1, 1, 12), dq=np.ones(12), kp=np.full(12, 20.0), kd=np.full(12, 0.5), tau=np.full(12, 0.1)
    )
    ros = fill_lowcmd(init_lowcmd(LowCmd()), cmds)
    plain = fill_lowcmd(init_lowcmd(LowCmdData()), cmds)
    assert pack_lowcmd(ros) == pack_lowcmd(plain)
    assert ros.crc == plain.crc
