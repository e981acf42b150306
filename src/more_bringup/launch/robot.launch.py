"""The robot stack for a full ROS 2 install: `ros2 launch more_bringup robot.launch.py [params:=FILE] [backend:=B]`.

RealSense camera -> VLA policy -> a locomotion backend, every node its own process, all configured from one YAML
(launch/config/robot.yaml; each node rejects unknown or wrongly typed keys). `backend`:
- lowlevel (default, the paper's path): walk-these-ways controller -> Go2 bridge (LowCmd; releases sport mode),
  the node list `more_bringup.stacks.STACKS["robot"]`;
- sport: the Go2's own locomotion through its sport API (go2_sport: Move/StopMove, no LowCmd),
  `STACKS["robot_sport"]`.
`more-stack robot [--backend B]` starts the same lists where `ros2 launch` is not available. The policy publishes
stop commands until it is enabled: ros2 service call /more/policy/enable std_srvs/srv/SetBool "{data: true}".
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.stacks import DEFAULT_BACKEND, ROBOT_BACKENDS, STACKS, config_file

STACK = "robot"


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    backend = LaunchConfiguration("backend")
    shared = set.intersection(*(set(STACKS[s]) for s in ROBOT_BACKENDS.values()))
    nodes = []
    for name, stack in ROBOT_BACKENDS.items():
        for spec in STACKS[stack]:
            if spec in shared and name != DEFAULT_BACKEND:
                continue  # started once, whatever the backend
            nodes.append(
                Node(
                    package=spec.package,
                    executable=spec.executable,
                    name=spec.name,
                    output="screen",
                    remappings=list(spec.remappings),
                    parameters=[params],
                    condition=None if spec in shared else IfCondition(EqualsSubstitution(backend, name)),
                )
            )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params", default_value=str(config_file(STACK)), description="parameter file of the stack"
            ),
            DeclareLaunchArgument(
                "backend",
                default_value=DEFAULT_BACKEND,
                choices=sorted(ROBOT_BACKENDS),
                description="locomotion: lowlevel (controller + bridge, LowCmd) | sport (the Go2's sport API)",
            ),
            *nodes,
        ]
    )
