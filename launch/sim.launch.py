"""The simulated stack for a full ROS 2 install: `ros2 launch launch/sim.launch.py [params:=FILE]`.

The six-task simulator node (camera image, episode status, odometry; it follows the QuadrupedCommand) and the
VLA policy node, configured from launch/config/sim.yaml. `more-stack sim` starts the same nodes with the same
file where `ros2 launch` is not available.
"""

from pathlib import Path

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

CONFIG = Path(__file__).resolve().parent / "config" / "sim.yaml"


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params", default_value=str(CONFIG), description="parameter file of the stack"),
            Node(
                package="more_sim",
                executable="sim_node",
                name="more_sim",
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
        ]
    )
