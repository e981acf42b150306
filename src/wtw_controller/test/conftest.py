"""wtw_controller tests: make the shared helper modules importable (unique names: no clash with other suites).

wtw_helpers (TorchScript runs made on the spot) lives here; robot_ros_helpers (node processes and a
probe node) is shared with go2_bridge's tests.
"""

import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parents[1] / "go2_bridge" / "test"))
