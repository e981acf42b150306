"""Topic, service and frame names used across the stack: the one place they are spelled.

Nodes take these as parameter defaults, so a deployment can remap without code changes.
Camera names follow realsense-ros (camera_name:=camera in namespace camera), so bags recorded
with the RealSense driver replay unchanged.
"""

# Camera (realsense-ros defaults)
CAMERA_IMAGE = "/camera/camera/color/image_raw"
CAMERA_INFO = "/camera/camera/color/camera_info"
CAMERA_OPTICAL_FRAME = "camera_color_optical_frame"

# VLA policy
INSTRUCTION = "/more/instruction"  # std_msgs/String
COMMAND = "/more/command"  # more_msgs/QuadrupedCommand
POLICY_STATUS = "/more/policy/status"  # more_msgs/PolicyStatus
POLICY_ENABLE = "/more/policy/enable"  # std_srvs/SetBool
ANNOTATED_IMAGE = "/more/policy/annotated_image"  # sensor_msgs/Image
MARKERS = "/more/markers"  # visualization_msgs/MarkerArray

# Low-level controller and bridge
JOINT_TARGETS = "/more/joint_targets"  # more_msgs/JointTargets
JOINT_STATES = "/joint_states"  # sensor_msgs/JointState
IMU = "/imu/data"  # sensor_msgs/Imu
FOOT_CONTACTS = "/more/foot_contacts"  # std_msgs/Float32MultiArray
ESTOP = "/more/estop"  # std_msgs/Bool, true = damp now
LOWCMD = "/lowcmd"  # unitree_go/LowCmd
LOWSTATE = "/lowstate"  # unitree_go/LowState
WIRELESS_CONTROLLER = "/wirelesscontroller"  # unitree_go/WirelessController
BRIDGE_STATE = "/more/bridge/state"  # std_msgs/String (latched): "STATE: reason"
BRIDGE_STAND_UP = "/more/bridge/stand_up"  # std_srvs/Trigger: PASSIVE -> STAND_UP
BRIDGE_ACTIVATE = "/more/bridge/activate"  # std_srvs/Trigger: STAND_UP -> ACTIVE
BRIDGE_DAMP = "/more/bridge/damp"  # std_srvs/Trigger: any -> DAMPING
BRIDGE_RESET = "/more/bridge/reset"  # std_srvs/Trigger: DAMPING -> PASSIVE
SPORT_REQUEST = "/api/sport/request"  # unitree_api/Request (sport mode API, e.g. StandDown)
MOTION_SWITCHER_REQUEST = "/api/motion_switcher/request"  # unitree_api/Request
MOTION_SWITCHER_RESPONSE = "/api/motion_switcher/response"  # unitree_api/Response
SPORT_RESPONSE = "/api/sport/response"  # unitree_api/Response: the Go2's answer to each sport request
# Sport-mode backend (go2_bridge.sport_node): the Go2's own locomotion driven through the sport API
SPORT_STATE = "/more/sport/state"  # std_msgs/String (latched): "STATE: reason"
SPORT_STAND_UP = "/more/sport/stand_up"  # std_srvs/Trigger: StandUp, then BalanceStand; Move allowed again
SPORT_STAND_DOWN = "/more/sport/stand_down"  # std_srvs/Trigger: StopMove, StandDown (lies down)
SPORT_DAMP = "/more/sport/damp"  # std_srvs/Trigger: StopMove, Damp (motors damped: the robot drops)
SPORT_RECOVERY_STAND = "/more/sport/recovery_stand"  # std_srvs/Trigger: RecoveryStand, then BalanceStand
GO2_SIM_ODOM = "/more/go2_sim/odom"  # nav_msgs/Odometry: the MuJoCo Go2's true base pose, stamped in sim time
GO2_SIM_PUSH = "/more/go2_sim/push"  # geometry_msgs/Twist: shove the MuJoCo Go2 (trunk velocity change; tests)

# Simulator
SIM_ODOM = "/more/sim/odom"  # nav_msgs/Odometry
SIM_EPISODE = "/more/sim/episode"  # more_msgs/EpisodeStatus
SIM_EPISODE_END = "/more/sim/episode_end"  # more_msgs/EpisodeEnd: once per episode, how it ended
SIM_RESET = "/more/sim/reset"  # std_srvs/Trigger: start the next episode now
SIM_VIEW = "/more/sim/view"  # sensor_msgs/Image: third-person view of the simulated Go2 (demo videos)

DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray

# Frames
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"

# Teleoperation, command arbitration and episode labelling (more_teleop)
VLA_COMMAND = "/more/vla/command"  # more_msgs/QuadrupedCommand: the policy's output, remapped here when the mux runs
TELEOP_COMMAND = "/more/teleop/command"  # more_msgs/QuadrupedCommand: the 12-dim teleop command (more-teleop)
TELEOP_TWIST = "/more/teleop/cmd_vel"  # geometry_msgs/Twist (REP-103, base_link): teleop_twist_keyboard / joy
CMD_VEL = "/cmd_vel"  # geometry_msgs/Twist: mirror of the active command's vx, vy, wz (zeros when stopped)
JOY = "/joy"  # sensor_msgs/Joy (joy package, game_controller_node layout)
EPISODE_STATUS = "/more/episode/status"  # more_msgs/EpisodeStatus: labels of teleoperated episodes
EPISODE_START = "/more/episode/start"  # std_srvs/Trigger: start recording an episode
EPISODE_STOP = "/more/episode/stop"  # std_srvs/SetBool: end it, data = success (true) or failure (false)
EPISODE_DISCARD = "/more/episode/discard"  # std_srvs/Trigger: end it without a label (left out of datasets)
