"""QoS profiles of the stack, in one place (imports rclpy: for nodes only).

Sensors use the sensor-data profile (best effort, shallow: the newest frame matters, old ones
are worthless). Commands that move the robot are RELIABLE with depth 1: the newest command must
arrive, a backlog of stale ones must not. Status and diagnostics are RELIABLE depth 10.
"""

from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.qos_overriding_options import QoSOverridingOptions

SENSOR_QOS = qos_profile_sensor_data
COMMAND_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
STATUS_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
# The e-stop keeps every message, in order: a True must never be replaced in the queue by the False after it.
ESTOP_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
# The instruction is latched so a policy started later still receives the last one.
LATCHED_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)

# Every publisher and subscription of the stack takes deployment overrides of these policies, e.g.
# `-p qos_overrides./more/command.subscription.depth:=5` (a key for a topic the node does not use is an error).
OVERRIDABLE = QoSOverridingOptions.with_default_policies()
