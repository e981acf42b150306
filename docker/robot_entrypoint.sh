#!/usr/bin/env bash
# Entry point of the robot image: ROS 2 Jazzy, unitree_ros2's interfaces, then this workspace; CycloneDDS
# bound to the robot's network interface (GO2_NETWORK_INTERFACE). Runs the given command (default: a shell).
set -eo pipefail
# shellcheck disable=SC1091
source /opt/ros/jazzy/setup.bash
# shellcheck disable=SC1091
source /opt/unitree_ws/install/setup.bash
# shellcheck disable=SC1091
source /opt/more_ws/install/setup.bash
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_cyclonedds_cpp}
export CYCLONEDDS_URI=${CYCLONEDDS_URI:-file:///opt/more_ws/cyclonedds_go2.xml}
if [ -z "${GO2_NETWORK_INTERFACE:-}" ]; then
  echo "[robot] GO2_NETWORK_INTERFACE is not set: DDS binds to eth0 (see docs/deployment.md)" >&2
fi
exec "$@"
