"""The workspace's packages by kind, and the one-way dependency rules between them.

ROS_PACKAGES may import rclpy; every other package is pure Python and may not, directly or through what it imports
(the training image and a plain `pip install` of the pure packages carry no ROS). Pure packages import only pure
packages. A new package must be added to one of the two lists, or this test fails.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
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


# The workspace packages each package may import (more_msgs and the sim_interfaces are interfaces, not listed).
# One way, except the two lazy edges between more_model and more_sim (LAZY_DEPENDENCIES). docs/architecture.md
# states the same graph; change both together.
ALLOWED_DEPENDENCIES: dict[str, set[str]] = {
    "more_common": set(),
    "more_model": {"more_common", "more_sim"},
    "more_sim": {"more_common", "more_model"} | {"wtw_controller", "go2_bridge", "go2_sim"},
    "more_training": {"more_common", "more_model", "more_sim"},
    "more_ros": {"more_common"},
    "more_vla_policy": {"more_common", "more_ros", "more_model"},
    "wtw_controller": {"more_common", "more_ros"},
    "go2_bridge": {"more_common", "more_ros"},
    "more_teleop": {"more_common", "more_ros", "go2_bridge"},
    "go2_sim": {"more_common", "more_ros", "more_sim", "go2_bridge", "wtw_controller"},
    "more_sim_ros": {"more_common", "more_ros", "more_sim", "go2_sim"},
    "more_bringup": {"more_common", "more_ros", "more_vla_policy", "more_model", "more_sim_ros"},
}
# Edges only ever imported inside a function, where the importing feature needs them: more_model's benchmark
# records simulator episodes, more_sim's checkpoint policy loads a model, more_bringup's monitor stands the simulated
# bridge up (simulation only), more_sim's go2 embodiment runs the robot's pure cores (ALLOWED_CROSSINGS).
LAZY_DEPENDENCIES = {
    ("more_model", "more_sim"),
    ("more_sim", "more_model"),
    ("more_bringup", "more_sim_ros"),
    ("more_sim", "wtw_controller"),
    ("more_sim", "go2_bridge"),
    ("more_sim", "go2_sim"),
}
# What docker/robot.Dockerfile copies besides the interfaces (test_docker.py pins the list itself).
ROBOT_IMAGE_PACKAGES = set(
    re.findall(r"^COPY\s+src/(\w+)/?\s", (ROOT / "docker" / "robot.Dockerfile").read_text(), flags=re.MULTILINE)
) - {"more_msgs"}


def _package_dirs() -> dict[str, Path]:
    dirs = {p.parent.name: p.parent / p.parent.name for p in (ROOT / "src").glob("*/setup.py")}
    dirs["more_training"] = ROOT / "training" / "more_training"
    return dirs


def _import_nodes(tree: ast.AST) -> Iterator[tuple[str, ast.stmt]]:
    """(module name, its import statement) for every absolute import in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((a.name, node) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node


def _imports(path: Path) -> set[str]:
    return {name for name, _ in _import_nodes(ast.parse(path.read_text(), filename=str(path)))}


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


def _workspace_imports(package: str) -> dict[str, bool]:
    """The workspace packages `package` imports -> whether any import of it runs at module import (eager)."""
    dirs = _package_dirs()
    found: dict[str, bool] = {}
    for path in sorted(dirs[package].rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(inner) for inner in ast.walk(node) if inner is not node)
        for name, node in _import_nodes(tree):
            top = name.split(".")[0]
            if top in dirs and top != package:
                found[top] = found.get(top, False) or id(node) not in in_function
    return found


def test_every_package_has_its_allowed_dependencies_listed():
    assert set(ALLOWED_DEPENDENCIES) == ROS_PACKAGES | PURE_PACKAGES
    for package, deps in ALLOWED_DEPENDENCIES.items():
        assert package not in deps and deps <= set(ALLOWED_DEPENDENCIES), package
    assert {a for a, _ in LAZY_DEPENDENCIES} <= set(ALLOWED_DEPENDENCIES)
    assert all(b in ALLOWED_DEPENDENCIES[a] for a, b in LAZY_DEPENDENCIES)


@pytest.mark.parametrize("package", sorted(ROS_PACKAGES | PURE_PACKAGES))
def test_package_imports_only_its_allowed_dependencies(package):
    imports = _workspace_imports(package)
    assert set(imports) <= ALLOWED_DEPENDENCIES[package], sorted(set(imports) - ALLOWED_DEPENDENCIES[package])
    eager_but_lazy = sorted(dep for dep, eager in imports.items() if eager and (package, dep) in LAZY_DEPENDENCIES)
    assert not eager_but_lazy, f"{package} imports {eager_but_lazy} at module level; keep it inside the function"


def test_eager_dependencies_run_one_way():
    """Without the lazy edges the graph has no cycle (a topological order exists)."""
    graph = {p: {d for d in deps if (p, d) not in LAZY_DEPENDENCIES} for p, deps in ALLOWED_DEPENDENCIES.items()}
    ordered: list[str] = []
    while len(ordered) < len(graph):
        ready = [p for p in sorted(graph) if p not in ordered and graph[p] <= set(ordered)]
        assert ready, f"a cycle among {sorted(set(graph) - set(ordered))}"
        ordered.extend(ready)


def test_robot_image_has_every_package_its_packages_import_at_module_level():
    """The robot image leaves the simulation out; nothing it copies may need a simulation package to import."""
    for package in ROBOT_IMAGE_PACKAGES:
        eager = {d for d in ALLOWED_DEPENDENCIES[package] if (package, d) not in LAZY_DEPENDENCIES}
        assert eager <= ROBOT_IMAGE_PACKAGES, f"{package} needs {sorted(eager - ROBOT_IMAGE_PACKAGES)}"
