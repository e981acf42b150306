"""The simulator's settings as one typed, validated dataclass (errors name the field and the value)."""

from __future__ import annotations

import math
from dataclasses import dataclass

GO2_BACKENDS = ("lowlevel", "sport", "sport_legacy")
MAX_GO2_DELAY_MS = 50.0  # [ms] state age or target delay: half the controller's sensor timeout (0.1 s)


@dataclass(frozen=True)
class SimConfig:
    image_height: int = 96  # [px] default suits a tiny model; the full Fuyu model uses 240 x 240
    image_width: int = 96  # [px]
    fovy: float = 60.0  # [deg] vertical field of view of the front camera
    camera_tilt: float = 0.2  # [rad] camera pitch below the body's heading
    decision_hz: float = 5.0  # policy decisions per second (QUARD uses 5 Hz)
    control_hz: float = 50.0  # base-tracking and contact-check rate (walk-these-ways runs at 50 Hz)
    time_constant_s: float = 0.25  # first-order lag of velocities, body height and pitch
    max_episode_steps: int = 100  # decisions before the time limit truncates (20 s at 5 Hz)
    style_variation: bool = False  # instructions add "<speed> with a <gait> gait" and the expert follows it
    render_images: bool = True  # False: black images (fast runs of privileged experts)
    # "kinematic": base_tracker + the 60 degree front camera (models/demo's world); "go2": the physics Go2 under the
    # controller core with a RealSense D435 on its head (fovy, camera_tilt and time_constant_s then do not apply)
    embodiment: str = "kinematic"
    # go2's head camera: "d435" (the RealSense's 42 degree vertical view) or "wide" (`fovy`, the kinematic camera's
    # field of view on the same mount: isolates the body from the camera when comparing with models/demo)
    go2_camera: str = "d435"
    # what walks the go2: "lowlevel" (the controller core on the motors, as the robot stack's default backend) or
    # the Go2's own locomotion behind its sport API, reached through the sport backend's core (go2_bridge.sport_core)
    # on firmware >= 1.1.6 ("sport") or before ("sport_legacy": BodyHeight is offered); docs/simulator.md
    go2_backend: str = "lowlevel"
    # [ms] how old the joint state and IMU are when the go2's controller reads them (lowlevel only): 0 reads the
    # physics' state of this instant; the robot stack's chain reads LowState 0-2 ms old plus its DDS hops (and
    # with the bridge's state_publish_divider 5 it was 0-10 ms, and the Go2 fell: docs/ros.md). A whole number
    # of the physics' 2 ms steps, at most MAX_GO2_DELAY_MS.
    go2_state_delay_ms: float = 0.0
    # [ms] how long the controller's joint targets take to reach the motors (lowlevel only): 0 applies them at once;
    # the robot's chain waits for the bridge's next 500 Hz tick (0-2 ms) plus the DDS hops controller -> bridge ->
    # robot. Whole 2 ms physics steps, at most MAX_GO2_DELAY_MS.
    go2_target_delay_ms: float = 0.0
    # a YAML file overriding the go2 controller's VelocityConfig fields, as the controller node's `config_file`
    # (lowlevel only; e.g. `ranges: {vx: [-0.4, 0.4]}`); empty: the defaults
    go2_controller_config: str = ""

    def __post_init__(self) -> None:
        if self.embodiment not in ("kinematic", "go2"):
            raise ValueError(f"embodiment must be 'kinematic' or 'go2', got {self.embodiment!r}")
        if self.go2_camera not in ("d435", "wide"):
            raise ValueError(f"go2_camera must be 'd435' or 'wide', got {self.go2_camera!r}")
        if self.go2_backend not in GO2_BACKENDS:
            raise ValueError(f"go2_backend must be one of {list(GO2_BACKENDS)}, got {self.go2_backend!r}")
        if self.go2_backend != "lowlevel" and self.embodiment != "go2":
            raise ValueError(f"go2_backend {self.go2_backend!r} needs embodiment 'go2', got {self.embodiment!r}")
        for name in ("go2_state_delay_ms", "go2_target_delay_ms"):
            delay = getattr(self, name)
            if not (isinstance(delay, (int, float)) and 0.0 <= delay <= MAX_GO2_DELAY_MS):
                raise ValueError(f"{name} must be in [0, {MAX_GO2_DELAY_MS:g}] ms, got {delay!r}")
            if delay and (self.embodiment != "go2" or self.go2_backend != "lowlevel"):
                raise ValueError(
                    f"{name} {delay!r} needs embodiment 'go2' with go2_backend 'lowlevel' (the stack's controller "
                    f"chain), got {self.embodiment!r} / {self.go2_backend!r}"
                )
        if self.go2_controller_config and (self.embodiment != "go2" or self.go2_backend != "lowlevel"):
            raise ValueError(
                f"go2_controller_config {self.go2_controller_config!r} needs embodiment 'go2' with go2_backend "
                f"'lowlevel', got {self.embodiment!r} / {self.go2_backend!r}"
            )
        for name in ("image_height", "image_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 8 <= value <= 2048:
                raise ValueError(f"{name} must be an int in [8, 2048], got {value!r}")
        checks = {
            "fovy": 1.0 <= self.fovy <= 170.0,
            "camera_tilt": abs(self.camera_tilt) < math.pi / 2,
            "decision_hz": self.decision_hz > 0,
            "control_hz": self.control_hz >= self.decision_hz,
            "time_constant_s": self.time_constant_s > 0,
            "max_episode_steps": isinstance(self.max_episode_steps, int) and self.max_episode_steps >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} has invalid value {getattr(self, name)!r}")

    @property
    def substeps(self) -> int:
        """Control substeps per decision (at least one)."""
        return max(1, round(self.control_hz / self.decision_hz))

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image_height, self.image_width

    @property
    def camera_fovy(self) -> float:
        """Vertical field of view of the robot's camera [deg]: the kinematic front camera's, or the D435's."""
        d435 = self.embodiment == "go2" and self.go2_camera == "d435"
        return 42.0 if d435 else self.fovy  # more_sim.go2.world.D435_VFOV_DEG
