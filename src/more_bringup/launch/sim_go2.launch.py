"""The whole chain on the physics Go2 for a full ROS 2 install:
`ros2 launch more_bringup sim_go2.launch.py [params:=FILE] [time_scale:=auto|X]`.

Six-task simulator playing the Go2 (images, instruction, episode status; LowState out, LowCmd in) -> VLA policy ->
controller (velocity backend) -> bridge -> back, every node its own process (`more_bringup.stacks.STACKS["sim_go2"]`,
what `more-stack sim --embodiment go2` starts), configured from launch/config/sim_go2.yaml with one time scale
applied to every node's rates and durations (more_bringup.dilation; auto: 1 on a robot-class machine, else 0.2).
Simulation only: the simulator node brings the bridge up itself here (`bring_up_bridge`: stand_up, activate, and
reset after a fall), as `more-stack` does from its own process; a robot is never stood up by a launch file.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

from launch import LaunchDescription
from more_bringup.sim_camera import policy_camera_size
from more_bringup.stacks import STACKS, WORLD, config_file

STACK = "sim_go2"


def timing_overrides(params_file: str, time_scale: str) -> dict[str, dict]:
    """Per node, the parameters the time scale sets (the file's full-speed values scaled), plus the bring-up."""
    import importlib

    from more_bringup.dilation import auto_scale, dilate
    from more_ros.params import load_params_file

    scale = auto_scale() if time_scale == "auto" else float(time_scale)
    sections = load_params_file(params_file)
    specs = {spec.name: importlib.import_module(spec.module).PARAMS for spec in STACKS[STACK]}
    dilated = dilate(sections, specs, scale)

    def unchanged(node: str, key: str, value: object) -> bool:  # the file's value, else the node's default
        base = sections.get(node, {}).get(key, specs[node][key][0] if key in specs.get(node, {}) else None)
        return base == value

    out = {n: {k: v for k, v in vals.items() if not unchanged(n, k, v)} for n, vals in dilated.items()}
    out.setdefault(WORLD.name, {})["real_time_factor"] = float(scale)  # stated always, 1 included
    out[WORLD.name]["bring_up_bridge"] = True
    out[WORLD.name].update(policy_camera_size(sections))  # renders at the policy's input size
    return out


def _nodes(context, *args, **kwargs):  # noqa: ANN001 - launch's OpaqueFunction signature
    params = context.launch_configurations["params"]
    overrides = timing_overrides(params, context.launch_configurations["time_scale"])
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            remappings=list(spec.remappings),
            parameters=[params, overrides.get(spec.name, {})],
        )
        for spec in STACKS[STACK]
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params", default_value=str(config_file(STACK)), description="parameter file of the stack"
            ),
            DeclareLaunchArgument(
                "time_scale", default_value="auto", description="simulated s per wall s for every node: auto or (0, 1]"
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
