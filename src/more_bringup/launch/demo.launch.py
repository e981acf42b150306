"""The smallest DDS check for a full ROS 2 install: `ros2 launch more_bringup demo.launch.py [vx:=0.5 wz:=0.3]`.

Same nodes and parameters as `more-demo` / `make talk` (`more_bringup.stacks.STACKS["talk"]`, which starts them
without `ros2 launch`): a fixed command publisher drives the kinematic simulated base.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.stacks import COMMAND_PUBLISHER, STACKS


def generate_launch_description() -> LaunchDescription:
    command = {"vx": LaunchConfiguration("vx"), "wz": LaunchConfiguration("wz"), "duration_s": 4.0}
    nodes = [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            remappings=list(spec.remappings),
            parameters=[command] if spec == COMMAND_PUBLISHER else [],
        )
        for spec in STACKS["talk"]
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument("vx", default_value="0.5", description="forward command [m/s]"),
            DeclareLaunchArgument("wz", default_value="0.3", description="yaw-rate command [rad/s]"),
            *nodes,
        ]
    )
