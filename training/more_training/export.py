"""`more-export CHECKPOINT OUT_DIR`: a training checkpoint -> a small inference checkpoint (e.g. models/demo/).

Keeps what `load_policy` needs (more_checkpoint.json, adapters, the tiny backbone directory) plus the
training config and a JSON summary of the run; drops the optimizer, RNG and target-network state.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from more_common.cli import OneLineArgumentParser

from .config import CONFIG_FILE

SUMMARY_FILE = "training_summary.json"


def export_policy(checkpoint: str | Path, out_dir: str | Path, note: dict[str, Any] | None = None) -> Path:
    """Write the inference checkpoint of `checkpoint` into `out_dir` (replaced if it exists, only once the new one
    is complete: it is written under a temporary name first, removed again on any failure)."""
    from more_model.checkpoint import load_checkpoint, save_checkpoint

    src, out = Path(checkpoint), Path(out_dir)
    ckpt = load_checkpoint(src)
    trainer = ckpt.extra.get("trainer", {})
    if not isinstance(trainer, dict):
        trainer = {}

    def write(tmp: Path) -> None:
        save_checkpoint(tmp, ckpt.policy, target=None, extra={"exported_from": src.name, "trainer": trainer})
        if (src / CONFIG_FILE).is_file():
            shutil.copy2(src / CONFIG_FILE, tmp / CONFIG_FILE)
        state = trainer.get("state", {})
        summary = {
            "checkpoint": src.name,
            **(state if isinstance(state, dict) else {}),
            "objective": trainer.get("objective"),
            **(note or {}),
        }
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    return replace_directory(out, write, inputs=[src])


def replace_directory(out_dir: str | Path, write: Callable[[Path], None], inputs: Sequence[str | Path] = ()) -> Path:
    """`write(tmp)` fills a temporary sibling of `out_dir`, which then replaces `out_dir`; on any failure the
    temporary directory is removed and `out_dir` is left as it was. An `out_dir` that is one of `inputs` or holds
    one is refused (CheckpointError) before anything is written: replacing it would delete what was read. So is an
    existing `out_dir` that is not a checkpoint (no more_checkpoint.json) and not empty, or not a directory: a
    mistyped output path must never delete a directory of other files."""
    from more_model.checkpoint_meta import META_FILE, CheckpointError

    out = Path(out_dir)
    if not out.resolve().name:
        raise CheckpointError(f"output directory {str(out_dir)!r}: not a directory that can be replaced")
    for source in map(Path, inputs):
        if out.resolve() == source.resolve() or out.resolve() in source.resolve().parents:
            raise CheckpointError(f"output directory {out} would replace its input {source}: choose another")
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"output directory {out} is a file: choose another path")
    if out.is_dir() and not (out / META_FILE).is_file() and any(out.iterdir()):
        raise CheckpointError(
            f"output directory {out} is not a checkpoint (no {META_FILE}) and not empty: refusing to replace it"
        )
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="more-export", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("checkpoint", help="a training checkpoint directory (runs/<run>/checkpoints/step-N)")
    parser.add_argument(
        "out_dir",
        help="where the inference checkpoint goes (a checkpoint there is replaced, other files refused)",
    )
    args = parser.parse_args(argv)
    from more_common.errors import one_line
    from more_model.checkpoint import CheckpointError

    try:
        print(export_policy(args.checkpoint, args.out_dir))
    except (CheckpointError, OSError) as err:  # CheckpointError names the checkpoint and the file at fault
        print(f"more-export: {one_line(err)}", file=sys.stderr)
        return 2
    return 0
