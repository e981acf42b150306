"""docs/ros.md documents every parameter of the camera and policy nodes (the tables must not drift)."""

import pytest

from more_vla_policy import camera_node, policy_node
from more_vla_policy.checkpoint_path import repo_root


@pytest.mark.parametrize("module", [camera_node, policy_node], ids=["camera_node", "policy_node"])
def test_every_parameter_is_documented(module):
    text = (repo_root() / "docs" / "ros.md").read_text()
    missing = [name for name in module.PARAMS if f"| `{name}` |" not in text]
    assert not missing, f"docs/ros.md lacks rows for {module.NODE_NAME} parameters {missing}"
