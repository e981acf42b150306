"""The checkpoint's JSON file (`more_checkpoint.json`): its name, format, version and reader, without torch.

Light on purpose: `more-stack` reads a checkpoint's input size from it before any node starts, and must not pay
for importing torch and transformers to do so. `more_model.checkpoint` writes the file and loads the tensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = "more-vla-checkpoint"
VERSION = 1
META_FILE = "more_checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or inconsistent."""


_META_TYPES: dict[str, tuple[type | tuple[type, ...], bool]] = {  # key -> (types, required)
    "model": (dict, True),
    "action_tokenizer": (dict, True),
    "tokenizer": ((dict, type(None)), False),
    "train_mode": (str, False),
    "backbone_dir": ((str, type(None)), True),
    "has_target": (bool, False),
    "extra": (dict, False),
}


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON, validated for format, version and the types of its fields."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a MoRE checkpoint (no {META_FILE})")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise CheckpointError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION or isinstance(meta.get("version"), bool):
        raise CheckpointError(f"{path}: version {meta.get('version')!r} is not supported (this code reads {VERSION})")
    for key, (types, required) in _META_TYPES.items():
        if key not in meta:
            if required:
                raise CheckpointError(f"{path}: missing {key!r}")
            continue
        if not isinstance(meta[key], types):
            raise CheckpointError(f"{path}: {key} has the wrong type ({type(meta[key]).__name__})")
    return meta


def input_size(directory: str | Path) -> tuple[int, int]:
    """(height, width) the checkpoint's model resizes every image to; CheckpointError if it cannot be read."""
    model = read_meta(directory)["model"]
    size = model.get("image_height"), model.get("image_width")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise CheckpointError(f"{Path(directory) / META_FILE}: model.image_height/width {size} are not sizes")
    return size
