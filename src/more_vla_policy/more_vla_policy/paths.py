"""Files the stack finds in its checkout: the demo checkpoint (models/demo) and the launch YAML (launch/config).

An installed package outside a checkout has neither; then they must be given explicitly (the callers say so).
"""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path | None:
    """The checkout this package runs from (an editable install), found by walking up from this file."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "src").is_dir() and (parent / "launch").is_dir():
            return parent
    return None


def demo_checkpoint_dir() -> Path:
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "models" / "demo"


def default_params_file(mode: str) -> Path:
    """launch/config/<mode>.yaml of the checkout (or of the current directory)."""
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "launch" / "config" / f"{mode}.yaml"
