"""The workspace's packages by kind, and the one-way dependency rules between them.

ROS_PACKAGES may import rclpy; every other package is pure Python and may not, directly or through what it imports
(the training image and a plain `pip install` of the pure packages carry no ROS). Pure packages import only pure
packages. A new package must be added to one of the two lists, or this test fails.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROS_PACKAGES = {
    "more_ros",
    "more_vla_policy",
    "wtw_controller",
    "go2_bridge",
    "go2_sim",
    "more_sim_ros",
    "more_teleop",
    "more_bringup",
}
PURE_PACKAGES = {"more_common", "more_model", "more_sim", "more_training"}
ROS_IMPORTS = {"rclpy", "launch", "launch_ros", "rosidl_runtime_py", "ament_index_python"}
# Pure packages may use these ROS-side packages' pure modules, named here one by one (lazily imported, never rclpy).
# more_sim's `go2` embodiment walks the physics Go2 with the robot's own controller core in process (architecture.md).
ALLOWED_CROSSINGS: dict[str, set[str]] = {
    # the low-level path (go2/walker.py) and the sport path (go2/sport.py)
    "more_sim": {"wtw_controller.core", "wtw_controller.onnx_policy", "wtw_controller.velocity"}
    | {"wtw_controller.state_age"}
    | {"go2_bridge.sport_api", "go2_bridge.sport_core", "go2_sim.sport_server"},
}


def _package_dirs() -> dict[str, Path]:
    dirs = {p.parent.name: p.parent / p.parent.name for p in (ROOT / "src").glob("*/setup.py")}
    dirs["more_training"] = ROOT / "training" / "more_training"
    return dirs


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_every_package_has_a_kind():
    assert set(_package_dirs()) == ROS_PACKAGES | PURE_PACKAGES
    assert not ROS_PACKAGES & PURE_PACKAGES


@pytest.mark.parametrize("package", sorted(PURE_PACKAGES))
def test_pure_package_sources_import_no_ros(package):
    offenders = []
    for path in sorted(_package_dirs()[package].rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in ROS_IMPORTS or (top in ROS_PACKAGES and name not in ALLOWED_CROSSINGS.get(package, set())):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_importing_every_pure_module_loads_no_rclpy():
    """Every module of the pure packages imported in a fresh interpreter: rclpy never ends up in sys.modules."""
    modules = []
    for package in sorted(PURE_PACKAGES):
        base = _package_dirs()[package]
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base.parent).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            modules.append(".".join(parts))
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
        f"{sorted(ROS_IMPORTS | ROS_PACKAGES)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
