"""node_main.spin_node: the one entry point every node's main() runs through."""

import pytest

from more_common.errors import ConfigurationError
from more_ros.node_main import spin_node


def test_a_signal_while_the_node_is_built_exits_cleanly():
    # rclpy's SIGINT/SIGTERM handler shuts the context down; a constructor still running then fails inside rclpy
    # (here: the context is shut down, then a node is created in it, as the bridge's constructor met it in CI)
    import rclpy

    def built_during_shutdown():
        rclpy.shutdown()
        return rclpy.create_node("too_late")

    assert spin_node(built_during_shutdown) == 0
    assert not rclpy.ok()


def test_a_signal_after_the_node_exists_exits_cleanly_too(capsys):
    """Once the context is shut down every rcl call raises RCLError (here: a publisher of a loading node); that is
    the signal, not bad input: exit 0 and no error line."""
    import rclpy
    from std_msgs.msg import Bool

    def shut_down_while_loading():
        node = rclpy.create_node("loading")
        rclpy.shutdown()
        node.create_publisher(Bool, "/x", 1)
        return node

    assert spin_node(shut_down_while_loading) == 0
    assert "error" not in capsys.readouterr().err


def test_a_constructor_error_with_the_context_alive_is_not_hidden():
    def broken():
        raise RuntimeError("a bug in the node")

    with pytest.raises(RuntimeError, match="a bug in the node"):
        spin_node(broken)


def test_a_configuration_error_is_exit_status_2(capsys):
    def misconfigured():
        raise ConfigurationError("rate_hz must be > 0, got -1")

    assert spin_node(misconfigured) == 2
    assert "error: rate_hz must be > 0, got -1" in capsys.readouterr().err


def _publisher_on(topic: str):
    def build():
        import rclpy
        from std_msgs.msg import Bool

        node = rclpy.create_node("probe_topics")
        node.create_publisher(Bool, topic, 1)
        return node

    return build


def test_a_topic_name_that_is_not_valid_is_exit_status_2_in_one_line(capsys):
    assert spin_node(_publisher_on("bad name!")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Invalid topic name") and "'bad name!'" in err


def test_ros_arguments_that_do_not_parse_are_exit_status_2_in_one_line(capsys):
    assert spin_node(_publisher_on("/fine"), ["--ros-args", "-p", "topic:="]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "'--ros-args -p topic:=' do not parse" in lines[0]


def test_a_path_the_node_cannot_use_is_exit_status_2(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")

    def writes_under_a_file():
        (tmp_path / "afile" / "rec").mkdir()

    assert spin_node(writes_under_a_file) == 2
    assert "afile/rec" in capsys.readouterr().err
