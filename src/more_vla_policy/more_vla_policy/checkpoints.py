"""Where the policy's checkpoint comes from: an explicit directory, or the demo checkpoint shipped in models/demo.

The demo checkpoint lives in the repository (models/demo, beside src/); an installed package that is not in a
checkout has no demo checkpoint and must be given one. Loading errors become ConfigurationError with one line
that says what to do, so a node or `more-stack` stops with a clear message instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from more_common.node_main import ConfigurationError

DEMO_SUBDIR = Path("models") / "demo"
ENV_VAR = "MORE_CHECKPOINT"


def demo_checkpoint_dir() -> Path:
    """models/demo of the checkout this package runs from (found by walking up from this file)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "src").is_dir() and (parent / "models").is_dir():
            return parent / DEMO_SUBDIR
    return Path.cwd() / DEMO_SUBDIR


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
        raise ConfigurationError(f"checkpoint directory {directory} does not exist; {hint}")
    from more_vla_policy.model import load_policy

    try:
        return load_policy(directory, device=device)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ConfigurationError(f"cannot load checkpoint {directory}: {type(err).__name__}: {err}") from err
