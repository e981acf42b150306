"""Online replay for a full ROS 2 install: `ros2 launch more_bringup replay.launch.py bag:=BAG [params:=FILE]`.

The bag's camera images (and instructions) are played into the policy node (`more_bringup.stacks.STACKS["replay"]`),
as `more-stack replay --bag BAG` does with the same YAML (launch/config/replay.yaml). Record the result with
`ros2 bag record -s mcap /camera/camera/color/image_raw /more/instruction /more/command /more/policy/status`
and evaluate it offline with `more-replay RECORDED --checkpoint DIR --json`.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.stacks import PLAYER, STACKS, config_file

STACK = "replay"


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    nodes = [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            remappings=list(spec.remappings),
            parameters=[params, {"bag": LaunchConfiguration("bag")}] if spec.name == PLAYER.name else [params],
        )
        for spec in STACKS[STACK]
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params", default_value=str(config_file(STACK)), description="parameter file of the stack"
            ),
            DeclareLaunchArgument("bag", description="the bag to play"),
            *nodes,
        ]
    )
