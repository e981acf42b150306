"""Every console_scripts entry point of the workspace is installed, imports, and answers --help."""

import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# every Python package of the workspace: src/*/setup.py and training/
DISTRIBUTIONS = (*sorted(p.parent.name for p in (ROOT / "src").glob("*/setup.py")), "more_training")


def _console_scripts() -> list[tuple[str, str]]:
    found = []
    for dist_name in DISTRIBUTIONS:
        try:
            dist = distribution(dist_name)
        except PackageNotFoundError:
            pytest.fail(f"{dist_name} is not installed: run `bash scripts/setup.sh`")
        found += [(dist_name, ep.name) for ep in dist.entry_points if ep.group == "console_scripts"]
    return found


SCRIPTS = _console_scripts()


def test_the_workspace_has_entry_points():
    names = {name for _, name in SCRIPTS}
    assert {"command_publisher", "base_sim_node", "more-demo", "more-stack", "more-train", "more-sim"} <= names


@pytest.mark.parametrize(("dist", "script"), SCRIPTS, ids=[s for _, s in SCRIPTS])
def test_entry_point_answers_help(dist, script):
    path = shutil.which(script)
    assert path, f"{script} (from {dist}) is not on PATH: run `bash scripts/setup.sh`"
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{script} --help exited {proc.returncode}: {proc.stderr[-1500:]}"
    assert "usage" in proc.stdout.lower(), f"{script} --help printed no usage: {proc.stdout[:500]}"
