"""Conversions between the policy package's plain data and ROS messages (the shared ones: more_ros.convert).

sensor_msgs/Image -> RawImage, CameraInfo from Intrinsics, MarkerArray from monitoring.MarkerSpec.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from more_ros.convert import stamp_to_ns
from more_vla_policy.camera_sources import Intrinsics
from more_vla_policy.monitoring import MarkerSpec
from more_vla_policy.policy_core import RawImage


def raw_image(msg: Any) -> RawImage:
    """sensor_msgs/Image -> RawImage without copying the pixel buffer (validation happens in the core)."""
    return RawImage(
        encoding=msg.encoding,
        height=msg.height,
        width=msg.width,
        step=msg.step,
        data=msg.data,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        is_bigendian=msg.is_bigendian,
    )


def camera_info_msg(intr: Intrinsics, frame_id: str, stamp: Any):  # noqa: ANN201 - sensor_msgs/CameraInfo
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.width, msg.height = intr.width, intr.height
    msg.distortion_model = intr.distortion_model
    msg.d = list(intr.coeffs)
    msg.k, msg.r, msg.p = intr.k, intr.r, intr.p
    return msg


_MARKER_TYPES = {"arrow": 0, "cube": 1, "line_strip": 4, "text": 9}  # visualization_msgs/Marker constants


def marker_array(specs: Iterable[MarkerSpec], frame_id: str, stamp: Any, lifetime_s: float = 0.0):  # noqa: ANN201
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    for spec in specs:
        m = Marker()
        m.header.frame_id = frame_id
        m.header.stamp = stamp
        m.ns, m.id, m.type, m.action = spec.ns, spec.id, _MARKER_TYPES[spec.kind], Marker.ADD
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in spec.position)
        o = m.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in spec.orientation)
        m.scale.x, m.scale.y, m.scale.z = (float(v) for v in spec.scale)
        m.color.r, m.color.g, m.color.b, m.color.a = (float(v) for v in spec.color)
        m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in spec.points]
        m.text = spec.text
        m.lifetime.sec = int(lifetime_s)
        m.lifetime.nanosec = int((lifetime_s % 1.0) * 1e9)
        out.markers.append(m)
    return out
