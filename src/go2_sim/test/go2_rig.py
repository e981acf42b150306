"""The probe side of the cross-process Go2 tests: ground-truth odometry in simulated time, the bridge's state,
services, e-stop and shove publishers, and (optionally) a check of every LowCmd the bridge sends."""

import math

import numpy as np

from more_ros import names


class Rig:
    def __init__(self, probe, scale=1.0):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from std_msgs.msg import Bool, String

        from more_msgs.msg import QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS

        self.probe = probe
        self.scale = scale  # simulated seconds per wall second (see dilated_params)
        self.diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
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

    def diagnostics(self, prefix):
        """(level, message, values) of the newest status whose name starts with `prefix`, or None."""
        for d in reversed(self.diags):
            for s in d.status:
                if s.name.startswith(prefix):
                    return s.level[0], s.message, {kv.key: kv.value for kv in s.values}
        return None

    def wait_sim(self, seconds, timeout_factor=4.0):
        """Spin until `seconds` of simulated time have passed (wall timeout: timeout_factor x their wall time + 10)."""
        target = self.sim_time + seconds
        assert self.spin_until(lambda: self.sim_time >= target, seconds / self.scale * timeout_factor + 10.0), (
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


def dilated_params(scale):
    """Node parameters that run the whole chain in slow motion: every rate x `scale`, every duration / `scale`.

    In simulated time the chain then behaves as at full speed (the simulator runs at real_time_factor `scale`),
    while each process has 1 / scale times longer per cycle: on a machine with more runnable processes than
    cores, the 500 Hz Python loops otherwise fall behind and the walking policy, paced by the wall clock, gets
    its sensors and targets tens of ms late (the bundled policy stumbles from ~20 ms of delay). The bridge's
    staleness timeouts are at least 2 s of wall time (test_node.py: 1 s): with three nodes, this probe and other
    work on two cores a starved process pauses for up to ~2 s here; staleness itself is tested cycle by cycle in
    go2_bridge's test_safety.py."""
    return {
        "sim": {"real_time_factor": scale},
        "bridge": {
            "rate_hz": 500.0 * scale,
            "stand_up_duration_s": 2.0 / scale,
            "activate_blend_s": 0.5 / scale,
            "min_damping_s": 1.0 / scale,
            "target_timeout_s": max(2.0, 0.1 / scale),
            "lowstate_timeout_s": max(2.0, 0.05 / scale),
            "state_publish_divider": 5,  # JointState/Imu at 100 Hz (simulated), plenty for a 50 Hz controller
        },
        "controller": {
            "rate_hz": 50.0 * scale,
            "command_timeout_s": 0.5 / scale,
            "sensor_timeout_s": max(1.0, 0.1 / scale),
        },
    }


def is_damping(kp, kd):
    return bool((kp == 0).all() and (kd > 0).all())


class LowCmdAudit:
    """Checks every LowCmd this probe receives: finite, targets inside the joint limits, feed-forward torque
    inside the motor limits, gains bounded; and, once armed (an e-stop), that damping starts within a few
    LowCmds and never stops. The PD torque at the true joint positions is audited by the simulator itself
    (go2_mujoco_sim's /diagnostics), which knows them."""

    def __init__(self, probe, kp_max=100.0, kd_max=10.0):
        from go2_bridge.go2 import Q_MAX, Q_MIN, TORQUE_MAX
        from more_ros.qos import SENSOR_QOS
        from unitree_go.msg import LowCmd

        self.q_min, self.q_max, self.tau_max = Q_MIN, Q_MAX, TORQUE_MAX
        self.kp_max, self.kd_max = kp_max, kd_max
        self.count = 0
        self.violations = []  # (what, detail), the first 20
        self.armed = False
        self.damping_seen = False
        self.before_damping = 0  # LowCmds received after arming and before the first damping one
        probe.node.create_subscription(LowCmd, names.LOWCMD, self._on_lowcmd, SENSOR_QOS)

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
        if self.armed:
            damping = is_damping(kp, kd)
            if damping:
                self.damping_seen = True
            elif self.damping_seen:
                self._bad("non-damping LowCmd after damping began", kp.tolist())
            else:
                self.before_damping += 1

    def arm(self):
        self.armed, self.damping_seen, self.before_damping = True, False, 0

    def disarm(self):
        self.armed = False
