"""The one builder of diagnostic_msgs/DiagnosticArray for every node of the stack (imports the message lazily).

Each node reports one DiagnosticStatus named "<package or node>: <what>" with a level (OK, WARN, ERROR, STALE), a
one-line message and key/value pairs; floats are written with three decimals, everything else with str().
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels


def format_value(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def diagnostic_array(
    name: str, level: int, message: str, values: Mapping[str, Any], stamp: Any, hardware_id: str = ""
) -> Any:
    """A DiagnosticArray holding one status; `stamp` is a builtin_interfaces/Time."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    if level not in (OK, WARN, ERROR, STALE):
        raise ValueError(f"diagnostic level must be one of 0..3, got {level!r}")
    status = DiagnosticStatus(level=bytes([level]), name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=str(k), value=format_value(v)) for k, v in values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
