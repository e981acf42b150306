"""Online replay for a full ROS 2 install: `ros2 launch launch/replay.launch.py bag:=BAG [params:=FILE]`.

The bag's camera images (and instructions) are played into the policy node, as `more-stack replay --bag BAG`
does with the same YAML (launch/config/replay.yaml). Record the result with
`ros2 bag record -s mcap /camera/camera/color/image_raw /more/instruction /more/command /more/policy/status`
and evaluate it offline with `more-replay RECORDED --checkpoint DIR --json`.
"""

from pathlib import Path

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

CONFIG = Path(__file__).resolve().parent / "config" / "replay.yaml"


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    bag = LaunchConfiguration("bag")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params", default_value=str(CONFIG), description="parameter file of the stack"),
            DeclareLaunchArgument("bag", description="the bag to play"),
            Node(
                package="more_vla_policy",
                executable="policy_node",
                name="policy_node",
                output="screen",
                parameters=[params],
            ),
            Node(
                package="more_vla_policy",
                executable="bag_player",
                name="bag_player",
                output="screen",
                parameters=[params, {"bag": bag}],
            ),
        ]
    )
