"""Test helper for the controller's process tests: plays the bridge (JointState, Imu) and the VLA policy
(QuadrupedCommand), and reads the controller's targets and /diagnostics."""

from more_common.action_contract import action_from_mapping
from more_ros import names
from more_ros.convert import command_to_msg
from wtw_controller.joint_order import SDK_JOINT_NAMES


class Feeder:
    """Plays the bridge (JointState, Imu) and the VLA policy (QuadrupedCommand)."""

    def __init__(self, probe):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Imu, JointState

        from more_msgs.msg import JointTargets, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS

        node = probe.node
        self.probe = probe
        self.js_pub = node.create_publisher(JointState, names.JOINT_STATES, SENSOR_QOS)
        self.imu_pub = node.create_publisher(Imu, names.IMU, SENSOR_QOS)
        self.cmd_pub = node.create_publisher(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
        self.targets = probe.listen(JointTargets, names.JOINT_TARGETS, COMMAND_QOS, stamp=True)
        self.diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        self.JointState, self.Imu = JointState, Imu
        self.sensors = True
        self.state_age_s = None  # None: JointState unstamped (not counted); else stamped this long before now
        self.commands = True
        self.command = action_from_mapping({"vx": 0.5})
        self._n = 0

    def act(self):
        self._n += 1
        if self.sensors:
            js = self.JointState()
            if self.state_age_s is not None:
                from rclpy.duration import Duration

                js.header.stamp = (self.probe.node.get_clock().now() - Duration(seconds=self.state_age_s)).to_msg()
            js.name = list(reversed(SDK_JOINT_NAMES))  # any order: the controller maps by name
            js.position = [0.0] * 12
            js.velocity = [0.0] * 12
            self.js_pub.publish(js)
            imu = self.Imu()
            imu.orientation.w = 1.0
            self.imu_pub.publish(imu)
        if self.commands and self._n % 10 == 0:
            self.cmd_pub.publish(command_to_msg(self.command))

    def status(self):
        latest = self.latest()
        return latest.message if latest is not None else ""

    def latest(self):
        for d in reversed(self.diags):
            for s in d.status:
                if s.name.startswith("wtw_controller"):
                    return s
        return None

    def values(self):
        latest = self.latest()
        return {kv.key: kv.value for kv in latest.values} if latest is not None else {}
