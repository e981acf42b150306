"""The simulated demo for a full ROS 2 install: `ros2 launch launch/demo.launch.py`.

Same nodes and parameters as `more-demo` (which starts them without `ros2 launch`): a fixed command
publisher drives the kinematic simulated base.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    vx = LaunchConfiguration("vx")
    wz = LaunchConfiguration("wz")
    return LaunchDescription(
        [
            DeclareLaunchArgument("vx", default_value="0.5", description="forward command [m/s]"),
            DeclareLaunchArgument("wz", default_value="0.3", description="yaw-rate command [rad/s]"),
            Node(package="more_sim", executable="base_sim_node", name="base_sim", output="screen"),
            Node(
                package="more_vla_policy",
                executable="command_publisher",
                name="command_publisher",
                output="screen",
                parameters=[{"vx": vx, "wz": wz, "duration_s": 4.0}],
            ),
        ]
    )
