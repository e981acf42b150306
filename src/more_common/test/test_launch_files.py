"""Launch files cannot run here (no `ros2 launch` on PyPI); check that each parses and has its entry point,
and that every executable it names is a console script of the named package."""

import ast
import re
from importlib.metadata import distribution
from pathlib import Path

import pytest

LAUNCH_DIR = Path(__file__).resolve().parents[3] / "launch"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))


def test_there_are_launch_files():
    assert LAUNCH_FILES, f"no launch files in {LAUNCH_DIR}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_file_is_valid(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    text = path.read_text()
    for package, executable in re.findall(r'package="(\w+)",\s*executable="(\w+)"', text):
        scripts = {ep.name for ep in distribution(package).entry_points if ep.group == "console_scripts"}
        assert executable in scripts, f"{path.name}: {package} has no executable {executable}"
