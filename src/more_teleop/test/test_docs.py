"""docs/ros.md documents every parameter of the teleop package's nodes (the tables must not drift)."""

import pytest

from more_teleop import episode_node, mux_node, teleop_node
from more_vla_policy.checkpoint_path import repo_root


@pytest.mark.parametrize("module", [mux_node, episode_node, teleop_node], ids=lambda m: m.NODE_NAME)
def test_every_parameter_is_documented(module):
    text = (repo_root() / "docs" / "ros.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    missing = [name for name in module.PARAMS if not any(f"`{name}`" in row.split(" | ")[0] for row in rows)]
    assert not missing, f"docs/ros.md lacks rows for {module.NODE_NAME} parameters {missing}"
