"""The launch files and `more-stack` start the same nodes: both come from `more_bringup.stacks.STACKS`.

`ros2 launch` is not on PyPI, so each launch file runs here against small stand-ins for the `launch` and
`launch_ros` classes it uses, which record what it asks for; the real ones take the same arguments. The robot launch
file's `backend` argument is evaluated here as launch would: a node runs if it has no condition or its condition
`IfCondition(EqualsSubstitution(LaunchConfiguration("backend"), B))` names the chosen backend.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from importlib.metadata import distribution
from pathlib import Path

import pytest

from more_bringup.stacks import CONFIGURED, DEFAULT_BACKEND, RECORDER, ROBOT_BACKENDS, STACKS, config_file
from more_ros.params import load_params_file

LAUNCH_DIR = Path(__file__).resolve().parents[1] / "launch"
LAUNCH_OF_STACK = {
    "robot": "robot",
    "robot_sport": "robot",
    "sim": "sim",
    "sim_go2": "sim_go2",
    "replay": "replay",
    "talk": "demo",
}
BACKEND_OF_STACK = {stack: backend for backend, stack in ROBOT_BACKENDS.items()}
# models/demo's input size, read from its JSON by hand: what the sim stacks render at by default
_DEMO_JSON = Path(__file__).resolve().parents[3] / "models" / "demo" / "more_checkpoint.json"
_DEMO_MODEL = json.loads(_DEMO_JSON.read_text())["model"]
DEMO_RENDER = {"image_height": _DEMO_MODEL["image_height"], "image_width": _DEMO_MODEL["image_width"]}


class _Recorded:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


def _run_launch_file(path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict | None = None) -> list:
    stubs = {
        "launch": types.ModuleType("launch"),
        "launch.actions": types.ModuleType("launch.actions"),
        "launch.substitutions": types.ModuleType("launch.substitutions"),
        "launch.conditions": types.ModuleType("launch.conditions"),
        "launch_ros": types.ModuleType("launch_ros"),
        "launch_ros.actions": types.ModuleType("launch_ros.actions"),
    }
    stubs["launch"].LaunchDescription = lambda entities: list(entities)
    stubs["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorded,), {})
    stubs["launch.actions"].OpaqueFunction = type("OpaqueFunction", (_Recorded,), {})
    stubs["launch.substitutions"].LaunchConfiguration = type("LaunchConfiguration", (_Recorded,), {})
    stubs["launch.substitutions"].EqualsSubstitution = type("EqualsSubstitution", (_Recorded,), {})
    stubs["launch.conditions"].IfCondition = type("IfCondition", (_Recorded,), {})
    stubs["launch_ros.actions"].Node = type("Node", (_Recorded,), {})
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entities = module.generate_launch_description()
    # an OpaqueFunction runs at launch time with the arguments' values: run it as launch would, with the defaults
    arguments = {
        e.args[0]: e.kwargs.get("default_value") for e in entities if type(e).__name__ == "DeclareLaunchArgument"
    }
    context = types.SimpleNamespace(launch_configurations={**arguments, **(overrides or {})})
    expanded = []
    for e in entities:
        expanded += e.kwargs["function"](context) if type(e).__name__ == "OpaqueFunction" else [e]
    return expanded


def _runs(node: _Recorded, arguments: dict[str, str]) -> bool:
    """Whether launch starts `node` with these launch arguments (the one condition form the files use)."""
    condition = node.kwargs.get("condition")
    if condition is None:
        return True
    (equals,) = condition.args
    config, value = equals.args
    assert type(equals).__name__ == "EqualsSubstitution" and type(config).__name__ == "LaunchConfiguration"
    return arguments[config.args[0]] == value


@pytest.mark.parametrize("stack", sorted(LAUNCH_OF_STACK))
def test_launch_file_starts_exactly_the_stack(stack, monkeypatch):
    entities = _run_launch_file(LAUNCH_DIR / f"{LAUNCH_OF_STACK[stack]}.launch.py", monkeypatch)
    declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    arguments = {}
    if stack in BACKEND_OF_STACK:
        backend = declared["backend"]
        assert backend["default_value"] == DEFAULT_BACKEND == "lowlevel"  # the paper's path unless asked
        assert backend["choices"] == sorted(ROBOT_BACKENDS)  # launch refuses any other value by name
        arguments["backend"] = BACKEND_OF_STACK[stack]
    nodes = [e.kwargs for e in entities if type(e).__name__ == "Node" and _runs(e, arguments)]
    assert [(n["package"], n["executable"], n["name"], tuple(n["remappings"])) for n in nodes] == [
        (s.package, s.executable, s.name, s.remappings) for s in STACKS[stack]
    ]
    if stack in CONFIGURED or stack in BACKEND_OF_STACK:
        assert Path(declared["params"]["default_value"]) == config_file(stack)
        sections = set(load_params_file(config_file(stack))) - {RECORDER.name}
        runs = {s.name for v in (BACKEND_OF_STACK if stack in BACKEND_OF_STACK else [stack]) for s in STACKS[v]}
        assert sections <= runs, "a YAML section for a node the stack does not run"


def test_every_launch_file_belongs_to_a_stack():
    assert sorted(p.name for p in LAUNCH_DIR.glob("*.launch.py")) == sorted(
        {f"{name}.launch.py" for name in LAUNCH_OF_STACK.values()}
    )
    assert set(LAUNCH_OF_STACK) == set(STACKS)


def test_the_sport_backend_never_starts_the_low_level_chain():
    from more_bringup.stacks import BRIDGE, CONTROLLER, SPORT

    assert CONTROLLER not in STACKS["robot_sport"] and BRIDGE not in STACKS["robot_sport"]
    assert SPORT not in STACKS["robot"]
    assert STACKS["robot_sport"][:2] == STACKS["robot"][:2]  # the same camera and policy


def test_new_entry_points_are_declared_in_setup_py():
    """The console scripts of the sport backend, as each package's setup.py declares them (the installed metadata,
    which test_node_spec_matches_the_package reads, follows at the next colcon build)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    for spec in {s for stack in STACKS.values() for s in stack}:
        tree = ast.parse((root / spec.package / "setup.py").read_text())
        scripts = {
            e.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Dict)
            for k, v in zip(n.keys, n.values, strict=True)
            if isinstance(k, ast.Constant) and k.value == "console_scripts"
            for e in v.elts
        }
        assert f"{spec.executable}={spec.module}:main" in scripts, (spec.package, scripts)


@pytest.mark.parametrize("spec", sorted({s for stack in STACKS.values() for s in stack} | {RECORDER}, key=str))
def test_node_spec_matches_the_package(spec):
    scripts = {ep.name: ep.value for ep in distribution(spec.package).entry_points if ep.group == "console_scripts"}
    assert scripts.get(spec.executable) == f"{spec.module}:main", f"{spec.package} has no {spec.executable}"
    module = importlib.import_module(spec.module)
    assert getattr(module, "NODE_NAME", None) == spec.name, f"{spec.module}.NODE_NAME must be {spec.name!r}"


def test_sim_go2_launch_applies_the_time_scale_and_the_bring_up(monkeypatch):
    """time_scale:=0.2: every rate x 0.2, every duration / 0.2 (staleness timeouts at least 2 s), the simulator's
    real_time_factor 0.2 and its bridge bring-up on; the file's own values come first in each node's list."""
    entities = _run_launch_file(LAUNCH_DIR / "sim_go2.launch.py", monkeypatch, {"time_scale": "0.2"})
    nodes = {n.kwargs["name"]: n.kwargs["parameters"] for n in entities if type(n).__name__ == "Node"}
    assert all(Path(p[0]) == config_file("sim_go2") for p in nodes.values())
    assert nodes["more_sim"][1] == {"real_time_factor": 0.2, "bring_up_bridge": True, **DEMO_RENDER}
    assert nodes["policy_node"][1] == {"rate_hz": pytest.approx(1.2), "image_timeout_s": 5.0}  # file: 6 Hz, 1 s
    assert nodes["wtw_controller"][1] == {
        "rate_hz": 10.0,
        "command_timeout_s": 2.5,
        "sensor_timeout_s": 2.0,
        "state_age_warn_ms": 20.0,  # 4 ms / 0.2
    }
    assert nodes["go2_bridge"][1] == {
        "rate_hz": 100.0,
        "stand_up_duration_s": 10.0,
        "activate_blend_s": 2.5,
        "min_damping_s": 5.0,
        "target_timeout_s": 2.0,
        "lowstate_timeout_s": 2.0,
    }
    full_speed = _run_launch_file(LAUNCH_DIR / "sim_go2.launch.py", monkeypatch, {"time_scale": "1"})
    nodes = {n.kwargs["name"]: n.kwargs["parameters"] for n in full_speed if type(n).__name__ == "Node"}
    assert nodes["more_sim"][1] == {"real_time_factor": 1.0, "bring_up_bridge": True, **DEMO_RENDER}
    assert nodes["go2_bridge"][1] == {} and nodes["wtw_controller"][1] == {}


def test_sim_launch_renders_at_the_policys_input_size(monkeypatch, tmp_path):
    """sim.yaml leaves the simulator's image size out: the launch file sets the checkpoint's (more_bringup.sim_camera),
    the demo checkpoint's by default; a file that gives it keeps it."""
    entities = _run_launch_file(LAUNCH_DIR / "sim.launch.py", monkeypatch)
    nodes = {n.kwargs["name"]: n.kwargs["parameters"] for n in entities if type(n).__name__ == "Node"}
    assert Path(nodes["more_sim"][0]) == config_file("sim") and nodes["more_sim"][1] == DEMO_RENDER
    assert nodes["policy_node"][1] == {}
    sized = tmp_path / "sized.yaml"
    sized_section = "  ros__parameters:\n    image_width: 64\n    image_height: 48\n"
    sized.write_text(config_file("sim").read_text().replace("  ros__parameters:\n", sized_section, 1))
    entities = _run_launch_file(LAUNCH_DIR / "sim.launch.py", monkeypatch, {"params": str(sized)})
    nodes = {n.kwargs["name"]: n.kwargs["parameters"] for n in entities if type(n).__name__ == "Node"}
    assert nodes["more_sim"][1] == {} and load_params_file(sized)["more_sim"]["image_width"] == 64
