"""Node parameters, in one place: declaring them read-only with typed defaults, and ROS 2 parameter files.

[Contract]
- A node's parameters are a spec `{name: (default, check, description)}`. Types follow ROS 2 strictly, as
  `ros2 launch` applies them: a float parameter needs a float value (`5.0`, not `5`), bool true/false, str a string.
- `declare_parameters(node, spec, live=())` declares every parameter READ-ONLY (a node reads its parameters once,
  at start; `ros2 param set` is refused instead of reporting a success that changes nothing) except the `live`
  ones, which the node applies in an on-set callback that validates them; it checks each value
  and rejects every override the node received (from --params-file or -p) that the spec does not know, naming
  it. Only ROS's own `use_sim_time` and `qos_overrides.*` pass here; the node skeleton
  (`node_main.spin_node`) rejects a `qos_overrides.*` key that no publisher or subscription of the built node
  declared (publishers and subscriptions take overrides through `qos.OVERRIDABLE`).
- `load_params_file(path)` reads a ROS 2 parameter file (`node_name: {ros__parameters: {...}}`, nested dicts
  flattened with '.', `/**` for every node) into `{node_name: {param: value}}` with yaml.safe_load.
- `validate_params(sections, specs)` checks each section against its node's spec and raises ConfigurationError
  naming `node.param` for an unknown node, unknown key, wrong type or failed check, without starting ROS.
- Every float parameter (and every float in an array parameter) must be finite, whatever its check: no node of the
  stack has a use for inf or NaN, and `.inf` as a timeout or a rate would switch a watchdog off or spin a timer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from more_common.errors import ConfigurationError

if TYPE_CHECKING:
    from rclpy.node import Node

Check = Callable[[Any], bool]
Spec = Mapping[str, tuple[Any, Check | None, str]]
ROS_OWN_PARAMETERS = ("use_sim_time",)
QOS_OVERRIDES = "qos_overrides."
WILDCARD = "/**"


def not_finite(value: Any) -> bool:
    """A float that is inf or NaN, or an array parameter holding one (ints, strings and bools are never)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (str, bytes)):
        return False
    try:
        return any(isinstance(v, float) and not math.isfinite(v) for v in value)
    except TypeError:
        return False


def positive(value: Any) -> bool:
    return value > 0


def non_negative(value: Any) -> bool:
    return value >= 0


def declare_parameters(node: Node, spec: Spec, live: Collection[str] = ()) -> dict[str, Any]:
    """Declare each parameter `name: (default, check, description)`; return the validated values.

    Parameters are read-only except those named in `live`, which the node validates and applies in its own
    on-set callback. The type comes from the default (rclpy rejects a value of another type by name); `check`
    adds a range rule. Raises ConfigurationError naming the parameter and its value, or the overrides nobody
    declares.
    """
    assert set(live) <= set(spec), f"live parameters {sorted(set(live) - set(spec))} are not in the spec"
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import InvalidParameterTypeException

    values: dict[str, Any] = {}
    for name, (default, check, description) in spec.items():
        try:
            node.declare_parameter(
                name, default, ParameterDescriptor(description=description, read_only=name not in live)
            )
        except InvalidParameterTypeException as err:
            raise ConfigurationError(f"parameter {name!r}: {err}") from err
        value = node.get_parameter(name).value
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if not_finite(value):
            raise ConfigurationError(f"parameter {name!r} must be finite, got {value!r}: {description}")
        if check is not None and not check(value):
            raise ConfigurationError(f"parameter {name!r} has invalid value {value!r}: {description}")
        values[name] = value
    unknown = unknown_overrides(node, spec)
    if unknown:
        raise ConfigurationError(f"unknown parameter(s) for node {node.get_name()!r}: {unknown}; known: {sorted(spec)}")
    return values


def unknown_overrides(node: Node, spec: Spec | None = None) -> list[str]:
    """Overrides given to `node` that its spec (default: what it declared) does not know.

    With a spec, `qos_overrides.*` keys are left to the check after construction (spec None), when every
    publisher and subscription has declared the ones it accepts.
    """
    # rclpy keeps the overrides it parsed from the global and node arguments here (there is no accessor).
    # An override that no declare_parameter consumed is silently ignored by ROS, which is how a typo in a
    # launch YAML goes unnoticed: we refuse instead.
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    if spec is not None:
        return sorted(
            n for n in overrides if n not in spec and n not in ROS_OWN_PARAMETERS and not n.startswith(QOS_OVERRIDES)
        )
    return sorted(n for n in overrides if not node.has_parameter(n))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def parse_params(data: Any, where: str = "parameters") -> dict[str, dict[str, Any]]:
    """A parsed ROS 2 parameter file -> {node_name: {param: value}} (structure checked, values not)."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where}: top level must map node names to sections, got {type(data).__name__}")
    sections: dict[str, dict[str, Any]] = {}
    for node_name, section in data.items():
        name = str(node_name)
        if not isinstance(section, Mapping) or set(section) != {"ros__parameters"}:
            raise ConfigurationError(f"{where}: section {name!r} must contain exactly one key 'ros__parameters'")
        params = section["ros__parameters"]
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ConfigurationError(f"{where}: {name}.ros__parameters must be a mapping")
        flat: dict[str, Any] = {}
        _flatten("", params, flat)
        # launch matches node names with or without a leading slash; so do we.
        sections[name if name == WILDCARD else name.lstrip("/")] = flat
    return sections


def load_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    import yaml

    from more_common.typed_config import yaml_error_text

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_bytes().decode("utf-8"))
    except OSError as err:
        raise ConfigurationError(f"cannot read parameter file {p}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigurationError(f"{p} is not a UTF-8 text file (byte {err.start}: {err.reason})") from err
    except yaml.YAMLError as err:
        raise ConfigurationError(f"{p} is not valid YAML: {yaml_error_text(err)}") from err
    return parse_params(data or {}, str(p))


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, float)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        return isinstance(value, list)
    return True


def _ros_type(value: Any) -> str:
    for tp, name in ((bool, "bool"), (int, "integer"), (float, "double"), (str, "string"), (list, "array")):
        if isinstance(value, tp):
            return name
    return type(value).__name__


def validate_section(node_name: str, values: Mapping[str, Any], spec: Spec) -> dict[str, Any]:
    """Check one node's parameter values against its spec; returns them with defaults filled in."""
    unknown = sorted(set(values) - set(spec) - set(ROS_OWN_PARAMETERS))
    unknown = [k for k in unknown if not k.startswith(QOS_OVERRIDES)]
    if unknown:
        raise ConfigurationError(
            f"unknown parameter(s) {[f'{node_name}.{k}' for k in unknown]}; known for {node_name}: {sorted(spec)}"
        )
    out: dict[str, Any] = {}
    for name, (default, check, description) in spec.items():
        value = values.get(name, default)
        if not _type_ok(default, value):
            raise ConfigurationError(
                f"parameter {node_name}.{name} must be of type {_ros_type(default)} (like {default!r}), "
                f"got {_ros_type(value)} {value!r}"
            )
        if not_finite(value):
            raise ConfigurationError(f"parameter {node_name}.{name} must be finite, got {value!r}: {description}")
        if check is not None and not check(value):
            raise ConfigurationError(f"parameter {node_name}.{name} has invalid value {value!r}: {description}")
        out[name] = value
    return out


def validate_params(
    sections: Mapping[str, Mapping[str, Any]], specs: Mapping[str, Spec | None]
) -> dict[str, dict[str, Any]]:
    """Validate every section against `specs` (node name -> spec; None = a node whose spec we do not own:
    its section is accepted here and the node itself checks it). Unknown node names are rejected."""
    unknown = sorted(set(sections) - set(specs) - {WILDCARD})
    if unknown:
        raise ConfigurationError(f"parameter sections for unknown node(s) {unknown}; this stack runs {sorted(specs)}")
    out: dict[str, dict[str, Any]] = {}
    shared = dict(sections.get(WILDCARD, {}))
    for node_name, spec in specs.items():
        values = {**shared, **sections.get(node_name, {})}
        if spec is None:
            out[node_name] = values
            continue
        # `/**` values reach every node, so each node must know them (declare_parameters agrees at run time).
        out[node_name] = validate_section(node_name, values, spec)
    return out
