"""Where the policy's checkpoint comes from: an explicit directory, $MORE_CHECKPOINT, or the demo checkpoint.

The demo checkpoint lives in the repository (models/demo); an installed package that is not in a checkout has no
demo checkpoint and must be given one. Loading errors become ConfigurationError with one line
that says what to do, so a node or `more-stack` stops with a clear message instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from more_common.errors import ConfigurationError

ENV_VAR = "MORE_CHECKPOINT"


def repo_root() -> Path | None:
    """The checkout this package runs from (an editable install), found by walking up from this file."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "src").is_dir() and (parent / "models").is_dir():
            return parent
    return None


def demo_checkpoint_dir() -> Path:
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "models" / "demo"


def resolve_checkpoint(path: str) -> Path:
    """The directory to load: `path` if given, else $MORE_CHECKPOINT, else the demo checkpoint."""
    if path:
        return Path(path).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return demo_checkpoint_dir()


def load_checkpoint_policy(path: str, device: str = "cpu") -> Any:
    """Load the MoRE policy from `path` (see resolve_checkpoint); ConfigurationError naming the problem."""
    directory = resolve_checkpoint(path)
    if not directory.is_dir():
        hint = (
            "the demo checkpoint is missing: train it (see docs/ros.md) or pass a checkpoint directory"
            if not path
            else "pass an existing checkpoint directory"
        )
        what = "is a file, not a checkpoint directory" if directory.exists() else "does not exist"
        raise ConfigurationError(f"checkpoint directory {directory} {what}; {hint}")
    from more_model import load_policy

    try:
        return load_policy(directory, device=device)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ConfigurationError(f"cannot load checkpoint {directory}: {type(err).__name__}: {err}") from err
