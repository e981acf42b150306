# Source me: the workspace's environment (venv + colcon overlay + runtime defaults).
#   source scripts/env.sh
_more_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$_more_root/.venv/bin/activate"
export AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:-$VIRTUAL_ENV} CMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH:-$VIRTUAL_ENV}
if [ -f "$_more_root/install/setup.bash" ]; then
  # colcon's setup scripts read unset variables; do not let a caller's `set -u` trip over them.
  _more_u=$-; set +u
  # shellcheck disable=SC1091
  source "$_more_root/install/setup.bash"
  case $_more_u in *u*) set -u ;; esac
fi
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
# Nothing leaves this machine by default; set ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET on the robot network.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export MUJOCO_GL=${MUJOCO_GL:-egl}
unset _more_root _more_u
