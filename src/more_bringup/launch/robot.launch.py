"""The robot stack for a full ROS 2 install: `ros2 launch more_bringup robot.launch.py [params:=FILE]`.

RealSense camera -> VLA policy -> walk-these-ways controller -> Go2 bridge, every node its own process, all
configured from one YAML (launch/config/robot.yaml; each node rejects unknown or wrongly typed keys). The node list
is `more_bringup.stacks.STACKS["robot"]`, the same that `more-stack robot` starts where `ros2 launch` is not
available. The policy publishes stop commands until it is enabled:
ros2 service call /more/policy/enable std_srvs/srv/SetBool "{data: true}".
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.stacks import STACKS, config_file

STACK = "robot"


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
