"""The walking chain as three real processes over DDS: go2_mujoco_sim (Menagerie Go2, PD + torque lag, LowCmd CRC
checked) + go2_bridge + wtw_controller with its default velocity backend (the bundled open policy); the test
plays the VLA policy (QuadrupedCommand at ~10 Hz) and the operator (services, e-stop, a shove).

Judged on the Go2's true trunk pose in simulated time (/more/go2_sim/odom), so a busy machine only makes the test
slower. As in test_node.py the bridge's staleness timeouts are 1 s: three 50-500 Hz Python processes and this
probe share two cores here (staleness itself is tested cycle by cycle in go2_bridge's test_safety.py). The
e-stop's next-cycle guarantee is proven cycle by cycle in test_safety.py; over DDS the bound is the bridge test's
(a few 2 ms cycles in flight). Every LowCmd is audited: finite, targets inside the joint limits, feed-forward
torque inside the motor limits, gains bounded, and the PD torque at the measured joint positions
|tau + kp (q - q_m)| inside the motor limit (q_m: the LowState this probe saw last, a few ms off the bridge's).
"""

import math

import numpy as np
import pytest

from more_common.action_contract import action_from_mapping
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = [pytest.mark.ros, pytest.mark.slow]

WALK = action_from_mapping({"vx": 0.5})
# kp 20 x the joint travel in the few ms between the bridge's LowState and the probe's (walking joints move
# up to ~10 rad/s): the slack on the PD-torque audit, in Nm.
PD_PAIRING_SLACK = 2.0


@pytest.fixture(scope="module")
def rig():
    from go2_rig import LowCmdAudit, Rig

    timeouts = {"target_timeout_s": 1.0, "lowstate_timeout_s": 1.0}
    procs = {"sim": NodeProcess("go2_sim.node"), "bridge": NodeProcess("go2_bridge.bridge_node", timeouts)}
    probe = Probe("walking_chain_test")
    r = Rig(probe)
    r.procs = procs
    r.audit = LowCmdAudit(probe) if not __import__("os").environ.get("NOAUDIT") else None
    try:
        assert probe.spin_until(lambda: r.odom and r.state.startswith("PASSIVE"), 60.0), "".join(
            p.output() for p in procs.values()
        )
        procs["controller"] = NodeProcess("wtw_controller.controller_node")  # default: velocity backend
        stand_up_and_activate(r)
        yield r
    finally:
        probe.close()
        for name, proc in procs.items():
            rc = proc.stop()
            out = proc.output()
            assert rc == 0 and "Traceback" not in out, f"{name}:\n{out}"


def stand_up_and_activate(r):
    # refused until the bridge has heard the robot (LowState) after its start or reset
    assert r.spin_until(lambda: r.call(names.BRIDGE_STAND_UP).success, 30.0), r.state
    r.wait_sim(2.5)  # the 2 s stand-up interpolation, then hold
    assert r.spin_until(lambda: r.call(names.BRIDGE_ACTIVATE).success, 60.0), r.state + r.procs["controller"].output()
    assert r.spin_until(lambda: r.state.startswith("ACTIVE"), 5.0), r.state


def speed(samples):
    return math.hypot(*(samples[-1, 1:3] - samples[0, 1:3])) / (samples[-1, 0] - samples[0, 0])


def test_walks_forward_through_the_chain(rig):
    rig.command = WALK
    t0 = rig.sim_time
    rig.wait_sim(5.0)
    s = rig.samples(t0 + 2.0, t0 + 5.0)
    assert len(s) > 100
    heading = s[0, 5]
    forward = ((s[-1, 1] - s[0, 1]) * math.cos(heading) + (s[-1, 2] - s[0, 2]) * math.sin(heading)) / 3.0
    # the tracking bounds proper are judged in-process (wtw_controller/test/test_walking.py); here: it walks
    assert 0.25 < forward < 0.75, forward
    assert s[:, 4].max() < 0.5 and s[:, 3].min() > 0.2
    assert rig.state.startswith("ACTIVE"), rig.state


def test_command_loss_while_walking_stands_in_place(rig):
    rig.command = WALK
    rig.wait_sim(1.0)
    rig.command = None  # the VLA goes quiet: the controller's 0.5 s timeout, then its stand command
    t0 = rig.sim_time
    rig.wait_sim(4.0)
    s = rig.samples(t0 + 2.0, t0 + 4.0)
    assert speed(s) < 0.1, speed(s)
    assert s[:, 3].min() > 0.2 and s[:, 4].max() < 0.3  # standing, not sinking
    assert rig.state.startswith("ACTIVE"), rig.state  # the bridge never needed to step in


def test_estop_while_walking_damps_on_the_next_cycle(rig):
    rig.command = WALK
    rig.wait_sim(1.5)
    rig.audit.arm_damping()
    rig.estop(True)
    assert rig.spin_until(lambda: rig.audit.damping_since is not None, 5.0)
    assert rig.audit.non_damping_after_estop <= 5, rig.audit.non_damping_after_estop
    assert rig.spin_until(lambda: rig.state == "DAMPING: e-stop", 5.0), rig.state
    t0 = rig.sim_time
    rig.wait_sim(2.0)
    rig.audit.disarm_damping()
    s = rig.samples(t0, t0 + 2.0)
    assert s[-1, 3] < 0.2 and s[:, 3].min() > 0.02  # sank, did not fall through the floor
    rig.command = None
    rig.estop(False)
    rig.probe.spin_for(0.3, rig.act)
    assert rig.call(names.BRIDGE_RESET).success
    stand_up_and_activate(rig)


def test_a_shove_that_tips_the_robot_damps(rig):
    rig.command = WALK
    rig.wait_sim(1.5)
    rig.push(angular=(30.0, 0.0, 0.0))  # a hard kick on the side: 30 rad/s of roll
    assert rig.spin_until(lambda: rig.state.startswith("DAMPING"), 10.0), rig.state
    assert "tilt" in rig.state, rig.state


def test_every_lowcmd_within_joint_and_torque_limits(rig):
    audit = rig.audit
    assert audit.count > 5000, audit.count  # ~500 Hz over the tests above
    assert not audit.violations, audit.violations
    assert audit.worst_pd_excess <= PD_PAIRING_SLACK, audit.worst_pd_excess
    assert np.isfinite(audit.worst_pd_excess)
