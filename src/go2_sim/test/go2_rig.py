"""The probe side of the cross-process Go2 tests: ground-truth odometry in simulated time, the bridge's state,
services, e-stop and shove publishers, and (optionally) a check of every LowCmd the bridge sends."""

import math
import time

import numpy as np

from more_ros import names


class Rig:
    def __init__(self, probe):
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from std_msgs.msg import Bool, String

        from more_msgs.msg import QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS

        self.probe = probe
        self.odom = probe.listen(Odometry, names.GO2_SIM_ODOM, SENSOR_QOS)
        self.states = probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
        self.estop_pub = probe.node.create_publisher(Bool, names.ESTOP, COMMAND_QOS)
        self.push_pub = probe.node.create_publisher(Twist, names.GO2_SIM_PUSH, COMMAND_QOS)
        self.command_pub = probe.node.create_publisher(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
        self.Bool, self.Twist = Bool, Twist
        self.command = None  # published at ~10 Hz by act() while set
        self.procs = {}

    @property
    def sim_time(self):
        s = self.odom[-1].header.stamp
        return s.sec + s.nanosec * 1e-9 if self.odom else -1.0

    @property
    def state(self):
        return self.states[-1].data if self.states else ""

    def samples(self, t_from, t_to):
        """(t, x, y, z, tilt, yaw) of the trunk between two simulated times."""
        out = []
        for m in self.odom:
            t = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
            if t_from <= t <= t_to:
                q, p = m.pose.pose.orientation, m.pose.pose.position
                yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
                up = max(-1.0, min(1.0, 1 - 2 * (q.x * q.x + q.y * q.y)))  # world z of the trunk's z axis
                out.append((t, p.x, p.y, p.z, math.acos(up), yaw))
        return np.array(out)

    def act(self):
        if self.command is not None:
            from more_ros.convert import command_to_msg

            self.command_pub.publish(command_to_msg(self.command))

    def spin_until(self, predicate, timeout):
        return self.probe.spin_until(predicate, timeout, self.act, every=0.1)

    def wait_sim(self, seconds, timeout_factor=8.0):
        """Spin until `seconds` of simulated time have passed (wall timeout: timeout_factor x that + 10 s)."""
        target = self.sim_time + seconds
        assert self.spin_until(lambda: self.sim_time >= target, seconds * timeout_factor + 10.0), (
            f"simulation too slow: at {self.sim_time:.2f} s, wanted {target:.2f} s"
        )

    def call(self, service):
        from std_srvs.srv import Trigger

        return self.probe.call(Trigger, service, action=self.act)

    def estop(self, on):
        self.estop_pub.publish(self.Bool(data=on))

    def push(self, linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0)):
        msg = self.Twist()
        msg.linear.x, msg.linear.y, msg.linear.z = (float(v) for v in linear)
        msg.angular.x, msg.angular.y, msg.angular.z = (float(v) for v in angular)
        self.push_pub.publish(msg)


class LowCmdAudit:
    """Checks every LowCmd the probe receives against the Go2's limits, at the LowState the probe last saw.

    Kept as counters and the worst values (20 000 LowCmds per 40 s would not fit in a list cheaply)."""

    def __init__(self, probe, kp_max=100.0, kd_max=10.0):
        from go2_bridge.go2 import Q_MAX, Q_MIN, TORQUE_MAX
        from more_ros.qos import SENSOR_QOS
        from unitree_go.msg import LowCmd, LowState

        self.q_min, self.q_max, self.tau_max = Q_MIN, Q_MAX, TORQUE_MAX
        self.kp_max, self.kd_max = kp_max, kd_max
        self.q_measured = None
        self.count = 0
        self.violations = []  # (what, detail), the first 20
        self.worst_pd_excess = -np.inf  # max over LowCmds of |tau + kp (q - q_m)| - torque limit [Nm]
        self.damping_since = None  # monotonic time of the first damping LowCmd after arm_damping()
        self.non_damping_after_estop = 0
        self._estop_time = None
        self.lowcmds_after_estop = 0
        probe.node.create_subscription(LowState, names.LOWSTATE, self._on_lowstate, SENSOR_QOS)
        probe.node.create_subscription(LowCmd, names.LOWCMD, self._on_lowcmd, SENSOR_QOS)

    def _on_lowstate(self, msg):
        self.q_measured = np.fromiter((m.q for m in msg.motor_state[:12]), dtype=np.float64, count=12)

    def _bad(self, what, detail):
        if len(self.violations) < 20:
            self.violations.append((what, detail))

    def _on_lowcmd(self, msg):
        ms = msg.motor_cmd[:12]
        q = np.fromiter((m.q for m in ms), dtype=np.float64, count=12)
        kp = np.fromiter((m.kp for m in ms), dtype=np.float64, count=12)
        kd = np.fromiter((m.kd for m in ms), dtype=np.float64, count=12)
        tau = np.fromiter((m.tau for m in ms), dtype=np.float64, count=12)
        self.count += 1
        if not (np.isfinite(q).all() and np.isfinite(kp).all() and np.isfinite(kd).all() and np.isfinite(tau).all()):
            self._bad("non-finite", q.tolist())
            return
        if (q < self.q_min).any() or (q > self.q_max).any():
            self._bad("q beyond a joint limit", q.tolist())
        if (np.abs(tau) > self.tau_max).any():
            self._bad("feed-forward torque beyond a motor limit", tau.tolist())
        if (kp < 0).any() or (kp > self.kp_max).any() or (kd < 0).any() or (kd > self.kd_max).any():
            self._bad("gains out of bounds", (kp.tolist(), kd.tolist()))
        if self.q_measured is not None:
            excess = float(np.max(np.abs(tau + kp * (q - self.q_measured)) - self.tau_max))
            self.worst_pd_excess = max(self.worst_pd_excess, excess)
        if self._estop_time is not None:
            damping = bool((kp == 0).all() and (kd > 0).all())
            self.lowcmds_after_estop += 1
            if damping and self.damping_since is None:
                self.damping_since = time.monotonic()
            elif not damping and self.damping_since is None:
                self.non_damping_after_estop += 1
            elif not damping:
                self._bad("non-damping LowCmd after damping began", kp.tolist())

    def arm_damping(self):
        """From now on, count LowCmds until the first damping one; any non-damping one after it is a violation."""
        self._estop_time = time.monotonic()
        self.damping_since = None
        self.non_damping_after_estop = 0
        self.lowcmds_after_estop = 0

    def disarm_damping(self):
        self._estop_time = None
