"""The one diagnostics builder: levels, names, formatting of values (checked field by field)."""

import pytest

from more_ros import diagnostics


def test_builds_one_status_with_formatted_values():
    from builtin_interfaces.msg import Time

    array = diagnostics.diagnostic_array(
        "node: part", diagnostics.WARN, "something", {"a": 1.23456, "b": 3, "c": "x"}, Time(sec=5, nanosec=7), "hw"
    )
    assert (array.header.stamp.sec, array.header.stamp.nanosec) == (5, 7)
    (status,) = array.status
    assert (status.level, status.name, status.message, status.hardware_id) == (b"\x01", "node: part", "something", "hw")
    assert [(kv.key, kv.value) for kv in status.values] == [("a", "1.235"), ("b", "3"), ("c", "x")]


def test_levels_are_the_message_constants():
    from diagnostic_msgs.msg import DiagnosticStatus

    assert (
        int.from_bytes(DiagnosticStatus.OK),
        int.from_bytes(DiagnosticStatus.WARN),
        int.from_bytes(DiagnosticStatus.ERROR),
        int.from_bytes(DiagnosticStatus.STALE),
    ) == (diagnostics.OK, diagnostics.WARN, diagnostics.ERROR, diagnostics.STALE)
    with pytest.raises(ValueError, match="level"):
        diagnostics.diagnostic_array("n", 7, "m", {}, None)
