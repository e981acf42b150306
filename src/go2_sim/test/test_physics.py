"""The MuJoCo (Menagerie) Go2 with the bridge's safety core in one process, lock-stepped at 500 Hz (no ROS)."""

import numpy as np
import pytest

from go2_bridge.go2 import POS_STOP_F, STAND_POSE
from go2_bridge.lowcmd import LowCmdData, MotorCommands, fill_lowcmd, init_lowcmd
from go2_bridge.lowstate import parse_lowstate
from go2_bridge.lowstate_wire import LowStateData, lowstate_crc
from go2_bridge.safety import Mode, SafetyCore
from go2_sim.physics import Go2Sim

DT = 0.002


class Loop:
    def __init__(self):
        self.sim = Go2Sim()
        self.core = SafetyCore()
        self.ls = LowStateData()
        self.cmd = init_lowcmd(LowCmdData())

    def run(self, seconds, each=None):
        for _ in range(round(seconds / DT)):
            now = self.sim.time
            self.core.on_lowstate(parse_lowstate(self.sim.fill_lowstate(self.ls)), now)
            assert self.sim.apply_lowcmd(fill_lowcmd(self.cmd, self.core.step(now)))
            self.sim.step()
            if each is not None:
                each(self)


@pytest.fixture(scope="module")
def standing():
    loop = Loop()
    loop.run(0.2)
    assert loop.sim.base_position[2] < 0.1  # lying
    assert loop.core.request("stand_up", loop.sim.time)[0]
    loop.run(2.5)
    return loop


def test_lying_start_is_low_and_level():
    sim = Go2Sim()
    # trunk origin above the folded legs: thigh 1.2 and calf -2.7 put the feet ~0.11 m below the hips
    assert 0.05 < sim.base_position[2] < 0.12
    assert max(abs(a) for a in sim.base_rpy[:2]) < 0.05


def test_stand_up_from_lying_and_hold_ten_seconds(standing):
    heights, tilts, contacts = [], [], []

    def record(loop):
        heights.append(loop.sim.base_position[2])
        tilts.append(max(abs(a) for a in loop.sim.base_rpy[:2]))
        contacts.append(loop.sim.foot_forces() > 5.0)

    standing.run(10.0, record)
    assert standing.core.mode is Mode.STAND_UP
    # stand pose: feet ~0.30-0.31 m below the hips; never sagging, never tipping
    assert min(heights) > 0.27 and max(heights) < 0.33
    assert max(tilts) < 0.1
    assert np.all(contacts)
    # PD with kp 50 sags under the load: a calf carrying ~6 Nm sits 0.12 rad off its target
    np.testing.assert_allclose(standing.sim.q, STAND_POSE, atol=0.15)


def test_damping_lowers_the_robot_without_a_drop(standing):
    vz = []
    standing.core.request("damp", standing.sim.time)
    standing.run(3.0, lambda loop: vz.append(loop.sim.data.qvel[2]))
    assert standing.core.mode is Mode.DAMPING
    assert standing.sim.base_position[2] < 0.2  # it went down ...
    assert min(vz) > -1.5  # ... slower than a free fall from standing height (2.4 m/s)


def test_bad_crc_is_dropped_and_previous_command_kept():
    sim = Go2Sim()
    good = fill_lowcmd(
        init_lowcmd(LowCmdData()),
        MotorCommands(q=STAND_POSE, dq=np.zeros(12), kp=np.full(12, 30.0), kd=np.ones(12), tau=np.zeros(12)),
    )
    assert sim.apply_lowcmd(good)
    bad = fill_lowcmd(init_lowcmd(LowCmdData()), MotorCommands.zero_torque())
    bad.crc ^= 1
    assert not sim.apply_lowcmd(bad)
    assert sim.dropped_commands == 1 and np.allclose(sim.command.kp, 30.0)


def test_lowstate_carries_a_valid_crc():
    sim = Go2Sim()
    ls = sim.fill_lowstate(LowStateData())
    assert ls.crc == lowstate_crc(ls) != lowstate_crc(LowStateData())  # filled last, over the readings
    sim.step(5)
    assert sim.fill_lowstate(ls).crc == lowstate_crc(ls)


def test_pos_stop_value_disables_position_term():
    sim = Go2Sim()
    cmd = fill_lowcmd(
        init_lowcmd(LowCmdData()),
        MotorCommands(q=np.full(12, POS_STOP_F), dq=np.zeros(12), kp=np.full(12, 30.0), kd=np.ones(12),
                      tau=np.zeros(12)),
    )  # fmt: skip
    assert sim.apply_lowcmd(cmd)
    assert np.all(sim.command.kp == 0) and np.all(sim.command.q == 0)
    assert np.allclose(sim.command.kd, 1.0)
    sim.step(50)  # kd only: a robot at rest gets (almost) no torque
    assert np.abs(sim.body.applied).max() < 1.0


def test_motor_audit_holds_the_bridge_to_its_torque_promise(standing):
    """Lock-stepped with the safety core (stand-up, hold, damping), every LowCmd kept |tau + kp (q - q_m)| within
    the limit at a LowState the simulator sent; a LowCmd that pulls hard away from the robot's pose is caught."""
    audit = standing.sim.audit
    # the fixture's stand-up alone is 2.7 s at 500 Hz (1350 LowCmds); the tests before this one add their hold and
    # damping when the module runs whole, but this one must hold run alone too
    assert standing.sim.accepted_commands >= 1350
    assert audit.worst_pd_excess <= 1e-3 and audit.q_outside == 0 and audit.tau_outside == 0
    sim = Go2Sim(start="standing")
    sim.fill_lowstate(LowStateData())  # the one LowState a bridge could have heard
    q_m = sim.q.astype(np.float32).astype(np.float64)
    far = STAND_POSE.copy()
    far[2] = -0.9  # FR calf pulled ~0.6 rad away with kp 100: ~60 Nm asked of a 45.43 Nm motor
    cmd = fill_lowcmd(
        init_lowcmd(LowCmdData()),
        MotorCommands(q=far, dq=np.zeros(12), kp=np.full(12, 100.0), kd=np.ones(12), tau=np.zeros(12)),
    )
    assert sim.apply_lowcmd(cmd)
    expected = np.max(np.abs(100.0 * (far.astype(np.float32) - q_m)) - np.array([23.7, 23.7, 45.43] * 4))
    assert expected > 10.0 and sim.audit.worst_pd_excess == pytest.approx(expected, abs=1e-4)
