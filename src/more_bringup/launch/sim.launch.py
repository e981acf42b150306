"""The simulated stack for a full ROS 2 install: `ros2 launch more_bringup sim.launch.py [params:=FILE]`.

The six-task simulator node (camera image, episode status, odometry; it follows the QuadrupedCommand) and the VLA
policy node (`more_bringup.stacks.STACKS["sim"]`), configured from launch/config/sim.yaml. `more-stack sim` starts
the same processes with the same file where `ros2 launch` is not available.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.stacks import STACKS, config_file

STACK = "sim"


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    nodes = [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            remappings=list(spec.remappings),
            parameters=[params],
        )
        for spec in STACKS[STACK]
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params", default_value=str(config_file(STACK)), description="parameter file of the stack"
            ),
            *nodes,
        ]
    )
