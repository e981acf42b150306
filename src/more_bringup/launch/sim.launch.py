"""The simulated stack for a full ROS 2 install: `ros2 launch more_bringup sim.launch.py [params:=FILE]`.

The six-task simulator node (camera image, episode status, odometry; it follows the QuadrupedCommand) and the VLA
policy node (`more_bringup.stacks.STACKS["sim"]`), configured from launch/config/sim.yaml. The simulator renders
at the policy checkpoint's input size unless the file gives one (more_bringup.sim_camera). `more-stack sim` starts
the same processes with the same file where `ros2 launch` is not available.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.sim_camera import policy_camera_size
from more_bringup.stacks import STACKS, WORLD, config_file

STACK = "sim"


def overrides(params_file: str) -> dict[str, dict]:
    """Per node, what the launch adds to the file: the simulator's image size when the file leaves it out."""
    from more_ros.params import load_params_file

    return {WORLD.name: policy_camera_size(load_params_file(params_file))}


def _nodes(context, *args, **kwargs):  # noqa: ANN001 - launch's OpaqueFunction signature
    params = context.launch_configurations["params"]
    added = overrides(params)
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            remappings=list(spec.remappings),
            parameters=[params, added.get(spec.name, {})],
        )
        for spec in STACKS[STACK]
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params", default_value=str(config_file(STACK)), description="parameter file of the stack"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
