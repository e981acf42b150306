"""The robot stack for a full ROS 2 install: `ros2 launch launch/robot.launch.py [params:=FILE]`.

RealSense camera -> VLA policy -> walk-these-ways controller -> Go2 bridge, all configured from one YAML
(launch/config/robot.yaml; each node rejects unknown or wrongly typed keys). `more-stack robot` starts the same
nodes with the same file where `ros2 launch` is not available. The policy publishes stop commands until it is
enabled: ros2 service call /more/policy/enable std_srvs/srv/SetBool "{data: true}".
"""

from pathlib import Path

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

CONFIG = Path(__file__).resolve().parent / "config" / "robot.yaml"


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params", default_value=str(CONFIG), description="parameter file of the stack"),
            Node(
                package="more_vla_policy",
                executable="camera_node",
                name="camera_node",
                output="screen",
                parameters=[params],
            ),
            Node(
                package="more_vla_policy",
                executable="policy_node",
                name="policy_node",
                output="screen",
                parameters=[params],
            ),
            Node(
                package="wtw_controller",
                executable="wtw_controller_node",
                name="wtw_controller",
                output="screen",
                parameters=[params],
            ),
            Node(
                package="go2_bridge",
                executable="go2_bridge_node",
                name="go2_bridge",
                output="screen",
                parameters=[params],
            ),
        ]
    )
