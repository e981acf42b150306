"""Declaring and validating node parameters: typed defaults, checks that name the bad value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from more_common.node_main import ConfigurationError

if TYPE_CHECKING:
    from rclpy.node import Node

Check = Callable[[Any], bool]


def positive(value: Any) -> bool:
    return value > 0


def non_negative(value: Any) -> bool:
    return value >= 0


def declare_and_get(node: Node, spec: Mapping[str, tuple[Any, Check | None, str]]) -> dict[str, Any]:
    """Declare each parameter `name: (default, check, description)` and return the validated values.

    The type comes from the default (rclpy rejects a value of another type by name); `check` adds a
    range rule. Raises ConfigurationError naming the parameter and its value.
    """
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import InvalidParameterTypeException

    values: dict[str, Any] = {}
    for name, (default, check, description) in spec.items():
        try:
            node.declare_parameter(name, default, ParameterDescriptor(description=description))
        except InvalidParameterTypeException as err:
            raise ConfigurationError(f"parameter {name!r}: {err}") from err
        value = node.get_parameter(name).value
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if check is not None and not check(value):
            raise ConfigurationError(f"parameter {name!r} has invalid value {value!r}: {description}")
        values[name] = value
    return values
