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
SPORT = NodeSpec("go2_bridge", "go2_sport_node", "go2_bridge.sport_node", "go2_sport")
WORLD = NodeSpec("more_sim_ros", "world_sim_node", "more_sim_ros.world_node", "more_sim")
BASE = NodeSpec("more_sim_ros", "base_sim_node", "more_sim_ros.base_node", "base_sim")
COMMAND_PUBLISHER = NodeSpec(
    "more_vla_policy", "command_publisher", "more_vla_policy.command_publisher", "command_publisher"
)
PLAYER = NodeSpec("more_vla_policy", "bag_player", "more_vla_policy.replay.player_node", "bag_player")
RECORDER = NodeSpec("more_vla_policy", "bag_recorder", "more_vla_policy.replay.recorder_node", "bag_recorder")
MUX = NodeSpec("more_teleop", "command_mux", "more_teleop.mux_node", "command_mux")
EPISODES = NodeSpec("more_teleop", "episode_control", "more_teleop.episode_node", "episode_control")
# With the mux the policy proposes on /more/vla/command; the mux decides what /more/command carries (teleop first).
MUXED_POLICY = POLICY.remapped(("/more/command", "/more/vla/command"))

STACKS: dict[str, tuple[NodeSpec, ...]] = {
    # RealSense camera -> VLA policy -> command mux (teleop overrides; /cmd_vel) -> walk-these-ways controller ->
    # Go2 bridge (the robot); episode_control labels teleoperated episodes for data collection
    "robot": (CAMERA, MUXED_POLICY, MUX, EPISODES, CONTROLLER, BRIDGE),
    # VLA policy -> command mux <- teleop; six-task simulator (camera images, instruction, episode status; kinematic
    # base); the policy first: the runner starts the others once the policy reports (it loads its model first)
    # the robot with the sport-mode backend: RealSense camera -> VLA policy -> command mux -> the Go2's own
    # locomotion (sport API, no LowCmd)
    "robot_sport": (CAMERA, MUXED_POLICY, MUX, EPISODES, SPORT),
    "sim": (MUXED_POLICY, MUX, EPISODES, WORLD),
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
# The robot stack's locomotion backends (`more-stack robot --backend B`, `robot.launch.py backend:=B`): the stack
# each one starts. lowlevel is the paper's path (policy -> walk-these-ways controller -> bridge -> LowCmd) and the
# default; sport drives the Go2's built-in locomotion through its sport API (no LowCmd, sport mode stays on).
ROBOT_BACKENDS = {"lowlevel": "robot", "sport": "robot_sport"}
DEFAULT_BACKEND = "lowlevel"
# Variants that read another stack's parameter file (one robot.yaml configures both backends).
SHARED_CONFIG = {"robot_sport": "robot"}


def stack_for(mode: str, backend: str | None = None) -> str:
    """The stack `mode` starts with `backend` (robot only; None: the default). ValueError names a bad one."""
    if backend is None:
        return ROBOT_BACKENDS[DEFAULT_BACKEND] if mode == "robot" else mode
    if mode != "robot":
        raise ValueError(f"--backend applies to the robot stack only, not {mode!r}")
    if backend not in ROBOT_BACKENDS:
        raise ValueError(f"backend must be one of {sorted(ROBOT_BACKENDS)}, got {backend!r}")
    return ROBOT_BACKENDS[backend]


def configured_nodes(mode: str) -> tuple[NodeSpec, ...]:
    """Every node whose section launch/config/<mode>.yaml may hold (all the variants that read it), in order."""
    stacks = [mode, *(s for s, shared in SHARED_CONFIG.items() if shared == mode)]
    return tuple(dict.fromkeys(spec for stack in stacks for spec in STACKS[stack]))


def config_dir() -> Path:
    """launch/config of the checkout (editable install), else the installed share/more_bringup/launch/config."""
    checkout = Path(__file__).resolve().parents[1] / "launch" / "config"
    if checkout.is_dir():
        return checkout
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "launch" / "config"


def config_file(stack: str) -> Path:
    return config_dir() / f"{SHARED_CONFIG.get(stack, stack)}.yaml"
