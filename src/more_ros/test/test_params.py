"""Parameter files: ROS 2 YAML structure, unknown keys and wrong types rejected by name, in the pure validator
and inside a real rclpy node built from --params-file (the way `ros2 launch` and `more-stack` pass them)."""

import pytest

from more_common.errors import ConfigurationError
from more_ros.params import load_params_file, parse_params, validate_params, validate_section

SPEC = {
    "rate_hz": (5.0, lambda v: v > 0, "decision rate [Hz], > 0"),
    "enabled": (False, None, "start enabled"),
    "retries": (3, None, "count"),
    "name": ("x", None, "a name"),
}


def test_defaults_fill_in_and_good_values_pass():
    out = validate_section("n", {"rate_hz": 2.5, "enabled": True}, SPEC)
    assert out == {"rate_hz": 2.5, "enabled": True, "retries": 3, "name": "x"}


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"rate_hz": 5}, "parameter n.rate_hz must be of type double (like 5.0), got integer 5"),
        ({"rate_hz": "fast"}, "n.rate_hz must be of type double"),
        ({"enabled": 1}, "n.enabled must be of type bool (like False), got integer 1"),
        ({"retries": 2.0}, "n.retries must be of type integer"),
        ({"retries": True}, "n.retries must be of type integer (like 3), got bool True"),
        ({"name": 7}, "n.name must be of type string"),
        ({"rate_hz": -1.0}, "parameter n.rate_hz has invalid value -1.0: decision rate"),
        ({"rate_hz_typo": 1.0}, "unknown parameter(s) ['n.rate_hz_typo']"),
        # inf passes `v > 0`: a timeout of inf switches a watchdog off, a rate of inf spins its timer
        ({"rate_hz": float("inf")}, "parameter n.rate_hz must be finite, got inf: decision rate"),
        ({"rate_hz": float("nan")}, "parameter n.rate_hz must be finite, got nan"),
    ],
)
def test_bad_values_are_named(values, needle):
    with pytest.raises(ConfigurationError) as err:
        validate_section("n", values, SPEC)
    assert needle in str(err.value)


def test_file_structure_and_node_sections(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/policy_node:\n  ros__parameters:\n    rate_hz: 2.0\n    nested:\n      a: 1\n"
        "/**:\n  ros__parameters:\n    use_sim_time: false\n"
    )
    sections = load_params_file(path)
    assert sections == {"policy_node": {"rate_hz": 2.0, "nested.a": 1}, "/**": {"use_sim_time": False}}
    with pytest.raises(ConfigurationError, match=r"unknown parameter\(s\) \['policy_node.nested.a'\]"):
        validate_params(sections, {"policy_node": SPEC})
    with pytest.raises(ConfigurationError, match=r"unknown node\(s\) \['policy_node'\]"):
        validate_params(sections, {"camera_node": SPEC})
    # a node whose spec we do not own (None) is accepted as given
    out = validate_params({"other": {"k": 1}}, {"other": None, "policy_node": SPEC})
    assert out["other"] == {"k": 1} and out["policy_node"]["rate_hz"] == 5.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- a\n- b\n", "top level must map node names"),
        ("n:\n  rate_hz: 1.0\n", "section 'n' must contain exactly one key 'ros__parameters'"),
        ("n:\n  ros__parameters: [1, 2]\n", "n.ros__parameters must be a mapping"),
        ("n: {ros__parameters: {a: 1}\n", "is not valid YAML"),
    ],
)
def test_malformed_files(tmp_path, text, needle):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_params_file(path)


def test_parse_params_accepts_an_empty_section():
    assert parse_params({"n": {"ros__parameters": None}}) == {"n": {}}


@pytest.mark.ros
def test_a_real_node_rejects_unknown_and_mistyped_overrides(tmp_path):
    import rclpy
    from rclpy.node import Node

    from more_ros.params import declare_parameters

    good, unknown, wrong = (tmp_path / f"{n}.yaml" for n in ("good", "unknown", "wrong"))
    good.write_text("probe:\n  ros__parameters:\n    rate_hz: 2.0\n    use_sim_time: false\n")
    unknown.write_text("probe:\n  ros__parameters:\n    rate_hz: 2.0\n    ratehz: 3.0\n")
    wrong.write_text("probe:\n  ros__parameters:\n    rate_hz: 2\n")
    infinite = tmp_path / "infinite.yaml"
    infinite.write_text("probe:\n  ros__parameters:\n    rate_hz: .inf\n")

    def build(path):
        context = rclpy.Context()
        rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
        node = Node("probe", context=context)
        try:
            return declare_parameters(node, SPEC)
        finally:
            node.destroy_node()
            rclpy.shutdown(context=context)

    assert build(good)["rate_hz"] == 2.0
    with pytest.raises(ConfigurationError, match=r"unknown parameter\(s\) for node 'probe': \['ratehz'\]"):
        build(unknown)
    with pytest.raises(ConfigurationError, match=r"parameter 'rate_hz'.*INTEGER.*DOUBLE"):
        build(wrong)
    with pytest.raises(ConfigurationError, match=r"parameter 'rate_hz' must be finite, got inf"):
        build(infinite)


@pytest.mark.ros
def test_qos_overrides_are_applied_and_unknown_ones_rejected():
    """A running node's publisher takes `qos_overrides.*`; a key for a topic it does not use, or a bad value,
    ends it with exit status 2 and one line naming the key."""
    from rclpy.qos import ReliabilityPolicy

    from more_ros.names import COMMAND
    from more_ros.testing import NodeProcess, Probe

    key = f"qos_overrides.{COMMAND}.publisher.reliability"
    overridden = NodeProcess("more_vla_policy.command_publisher", {key: "best_effort"})
    plain = NodeProcess("more_vla_policy.command_publisher", {"topic": "/more/test/plain"})
    bad = [
        (NodeProcess("more_vla_policy.command_publisher", {"qos_overrides./no/such/topic.publisher.depth": 3}),
         "qos_overrides./no/such/topic.publisher.depth"),
        (NodeProcess("more_vla_policy.command_publisher", {key: "sometimes"}), "sometimes"),
    ]  # fmt: skip
    probe = Probe("qos_probe")
    try:

        def reliability(topic):
            infos = probe.node.get_publishers_info_by_topic(topic)
            return infos[0].qos_profile.reliability if infos else None

        assert probe.spin_until(lambda: reliability(COMMAND) and reliability("/more/test/plain"), 60)
        assert reliability(COMMAND) == ReliabilityPolicy.BEST_EFFORT
        assert reliability("/more/test/plain") == ReliabilityPolicy.RELIABLE  # the default, without an override
        for proc, needle in bad:
            assert proc.wait(60) == 2, proc.output()
            lines = proc.output().strip().splitlines()
            assert needle in lines[-1] and lines[-1].startswith("error:") and "Traceback" not in proc.output()
    finally:
        probe.close()
        for proc in (overridden, plain, *(p for p, _ in bad)):
            proc.stop()


@pytest.mark.ros
def test_parameters_are_read_only_at_run_time():
    """`ros2 param set` on a running node is refused (it reads its parameters once), not accepted and ignored."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import GetParameters, SetParameters

    from more_ros.testing import NodeProcess, Probe

    node = NodeProcess("more_vla_policy.command_publisher", {"rate_hz": 20.0})
    probe = Probe("param_probe")
    try:
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=5.0)
        result = probe.call(
            SetParameters, "/command_publisher/set_parameters", 60, parameters=[Parameter(name="rate_hz", value=value)]
        ).results[0]
        assert not result.successful and "read-only" in result.reason
        got = probe.call(GetParameters, "/command_publisher/get_parameters", 10, names=["rate_hz"])
        assert got.values[0].double_value == 20.0
    finally:
        probe.close()
        node.stop()
