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
