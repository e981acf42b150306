"""The one definition of each stack's nodes (pure Python: imported by the launch files and by `more-stack`).

[Contract] A stack is an ordered tuple of `NodeSpec`s: the ROS package, its console script, the Python module
whose `main` that script runs (how `more-stack` starts it as its own process), the node name, which is
also the node's section in the stack's parameter file `launch/config/<stack>.yaml`, and topic remappings. The
launch files build their `launch_ros` Node actions from this table and nothing else; `more-stack` starts the
same processes with the same file. A test checks each spec against the package's entry points and the node's own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE = "more_bringup"


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str
    module: str
    name: str
    remappings: tuple[tuple[str, str], ...] = ()  # (from, to) topic remappings, as `-r from:=to`

    def remapped(self, *pairs: tuple[str, str]) -> NodeSpec:
        return NodeSpec(self.package, self.executable, self.module, self.name, (*self.remappings, *pairs))

    def ros_args(self) -> list[str]:
        """The remappings as command-line ROS arguments (what `more-stack` passes after --ros-args)."""
        return [arg for a, b in self.remappings for arg in ("-r", f"{a}:={b}")]


CAMERA = NodeSpec("more_vla_policy", "camera_node", "more_vla_policy.camera_node", "camera_node")
POLICY = NodeSpec("more_vla_policy", "policy_node", "more_vla_policy.policy_node", "policy_node")
CONTROLLER = NodeSpec("wtw_controller", "wtw_controller_node", "wtw_controller.controller_node", "wtw_controller")
BRIDGE = NodeSpec("go2_bridge", "go2_bridge_node", "go2_bridge.bridge_node", "go2_bridge")
WORLD = NodeSpec("more_sim_ros", "world_sim_node", "more_sim_ros.world_node", "more_sim")
BASE = NodeSpec("more_sim_ros", "base_sim_node", "more_sim_ros.base_node", "base_sim")
COMMAND_PUBLISHER = NodeSpec(
    "more_vla_policy", "command_publisher", "more_vla_policy.command_publisher", "command_publisher"
)
PLAYER = NodeSpec("more_vla_policy", "bag_player", "more_vla_policy.replay.player_node", "bag_player")
RECORDER = NodeSpec("more_vla_policy", "bag_recorder", "more_vla_policy.replay.recorder_node", "bag_recorder")

STACKS: dict[str, tuple[NodeSpec, ...]] = {
    # RealSense camera -> VLA policy -> walk-these-ways controller -> Go2 bridge (the robot)
    "robot": (CAMERA, POLICY, CONTROLLER, BRIDGE),
    # VLA policy <- six-task simulator (camera images, instruction, episode status; kinematic base); the policy
    # first: the runner starts the simulator once the policy reports (it loads its model first)
    "sim": (POLICY, WORLD),
    # the whole chain on the physics Go2 (`more-stack sim --embodiment go2`): six-task simulator playing the robot
    # (images, instruction, episode status; LowState out, LowCmd in) -> VLA policy -> controller -> bridge -> back
    "sim_go2": (POLICY, WORLD, BRIDGE, CONTROLLER),
    # a bag's camera images and instructions -> VLA policy
    "replay": (POLICY, PLAYER),
    # the smallest DDS check (`make talk`): a fixed command -> the kinematic base
    "talk": (BASE, COMMAND_PUBLISHER),
}
# Stacks that read launch/config/<name>.yaml (talk takes its few parameters on the command line).
CONFIGURED = ("robot", "sim", "sim_go2", "replay")


def config_dir() -> Path:
    """launch/config of the checkout (editable install), else the installed share/more_bringup/launch/config."""
    checkout = Path(__file__).resolve().parents[1] / "launch" / "config"
    if checkout.is_dir():
        return checkout
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "launch" / "config"


def config_file(stack: str) -> Path:
    return config_dir() / f"{stack}.yaml"
