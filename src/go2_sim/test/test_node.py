"""The MuJoCo Go2, the bridge and the walk-these-ways controller as three real processes over DDS.

Judged in simulated time (the Go2's true base pose, stamped in sim time, on /more/go2_sim/odom), so a
busy machine only makes the test slower. The simulator never runs faster than the wall clock. The rig
loosens the bridge's staleness timeouts to 1 s: three 50-500 Hz Python processes share two cores with
other work here and one of them can be starved for hundreds of milliseconds (a starved simulator just
pauses; it does not fall). Staleness is tested cycle by cycle in test_safety.py and over DDS in
test_bridge_node.py.
"""

import math
import warnings

import pytest
import torch

from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class _Zero(torch.nn.Module):
    def __init__(self, out: int):
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], self.out)


def zero_policy_run(root):
    """A walk-these-ways run whose policy always outputs 0: the controller then targets its default pose."""
    ckpt = root / "checkpoints"
    ckpt.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Zero(12)).save(str(ckpt / "body_latest.jit"))
        torch.jit.script(_Zero(2)).save(str(ckpt / "adaptation_module_latest.jit"))
    return root


class Rig:
    def __init__(self, probe):
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, String

        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS

        self.probe = probe
        self.odom = probe.listen(Odometry, names.GO2_SIM_ODOM, SENSOR_QOS)
        self.states = probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
        self.joints = probe.listen(JointState, names.JOINT_STATES, SENSOR_QOS)  # the bridge hears the robot
        self.estop_pub = probe.node.create_publisher(Bool, names.ESTOP, COMMAND_QOS)
        self.Bool = Bool

    @property
    def sim_time(self):
        s = self.odom[-1].header.stamp
        return s.sec + s.nanosec * 1e-9 if self.odom else -1.0

    @property
    def state(self):
        return self.states[-1].data if self.states else ""

    def samples(self, t_from, t_to):
        out = []
        for m in self.odom:
            t = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
            if t_from <= t <= t_to:
                q = m.pose.pose.orientation
                roll = math.atan2(2 * (q.w * q.x + q.y * q.z), 1 - 2 * (q.x * q.x + q.y * q.y))
                pitch = math.asin(max(-1.0, min(1.0, 2 * (q.w * q.y - q.z * q.x))))
                out.append((t, m.pose.pose.position.z, max(abs(roll), abs(pitch))))
        return out

    def wait_sim(self, seconds, timeout_factor=6.0):
        """Spin until `seconds` of simulated time have passed (wall timeout: timeout_factor x that + 10 s)."""
        target = self.sim_time + seconds
        assert self.probe.spin_until(lambda: self.sim_time >= target, seconds * timeout_factor + 10.0), (
            f"simulation too slow: at {self.sim_time:.2f} s, wanted {target:.2f} s"
        )

    def call(self, service):
        from std_srvs.srv import Trigger

        return self.probe.call(Trigger, service)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    timeouts = {"target_timeout_s": 1.0, "lowstate_timeout_s": 1.0}
    sim = NodeProcess("go2_sim.node")
    bridge = NodeProcess("go2_bridge.bridge_node", timeouts)
    probe = Probe("go2_sim_test")
    r = Rig(probe)
    r.procs = {"sim": sim, "bridge": bridge}
    r.run_dir = zero_policy_run(tmp_path_factory.mktemp("wtw_zero"))
    try:
        ok = probe.spin_until(lambda: r.odom and r.joints and r.state.startswith("PASSIVE"), 60.0)
        assert ok, sim.output() + bridge.output()
        yield r
    finally:
        probe.close()
        for name, proc in r.procs.items():
            rc = proc.stop()
            out = proc.output()
            assert rc == 0 and "Traceback" not in out, f"{name}:\n{out}"


def test_stand_up_from_lying_and_hold_ten_simulated_seconds(rig):
    rig.wait_sim(0.2)
    assert rig.samples(0, rig.sim_time)[-1][1] < 0.12  # lying on its belly (folded legs: ~0.10 m)
    assert rig.call(names.BRIDGE_STAND_UP).success
    t0 = rig.sim_time
    rig.wait_sim(2.5 + 10.0)
    hold = rig.samples(t0 + 2.5, t0 + 12.5)
    assert len(hold) > 200  # ~50 Hz odometry over 10 s
    heights = [z for _, z, _ in hold]
    assert min(heights) > 0.27 and max(heights) < 0.33, (min(heights), max(heights))
    assert max(tilt for *_, tilt in hold) < 0.1
    assert rig.state.startswith("STAND_UP")  # no fault the whole time


def test_controller_takes_over_and_keeps_standing(rig):
    from more_msgs.msg import JointTargets
    from more_ros.qos import COMMAND_QOS

    targets = rig.probe.listen(JointTargets, names.JOINT_TARGETS, COMMAND_QOS)
    rig.procs["controller"] = NodeProcess("wtw_controller.controller_node", {"run_dir": str(rig.run_dir)})
    assert rig.probe.spin_until(lambda: len(targets) > 5, 60.0), rig.procs["controller"].output()
    response = rig.call(names.BRIDGE_ACTIVATE)
    assert response.success, response.message
    assert rig.probe.spin_until(lambda: rig.state.startswith("ACTIVE"), 5.0)
    t0 = rig.sim_time
    rig.wait_sim(3.0)
    held = rig.samples(t0 + 1.0, t0 + 3.0)
    # kp 20 (walk-these-ways' gains) sags more than the stand-up's kp 50, but stays up and level
    assert min(z for _, z, _ in held) > 0.2 and max(t for *_, t in held) < 0.15
    assert rig.state.startswith("ACTIVE"), rig.state


def test_estop_damps_and_the_robot_sinks_slowly(rig):
    rig.estop_pub.publish(rig.Bool(data=True))
    assert rig.probe.spin_until(lambda: rig.state.startswith("DAMPING"), 5.0)
    t0 = rig.sim_time
    rig.wait_sim(3.0)
    after = rig.samples(t0, t0 + 3.0)
    assert after[-1][1] < 0.2  # down
    assert min(z for _, z, _ in after) > 0.02  # and not through the floor
    assert rig.state == "DAMPING: e-stop"
