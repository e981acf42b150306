"""`more-export CHECKPOINT OUT_DIR`: a training checkpoint -> a small inference checkpoint (e.g. models/demo/).

Keeps what `load_policy` needs (more_checkpoint.json, adapters, the tiny backbone directory) plus the
training config and a JSON summary of the run; drops the optimizer, RNG and target-network state.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import CONFIG_FILE

SUMMARY_FILE = "training_summary.json"


def export_policy(checkpoint: str | Path, out_dir: str | Path, note: dict[str, Any] | None = None) -> Path:
    """Write the inference checkpoint of `checkpoint` into `out_dir` (replaced if it exists)."""
    from more_model.checkpoint import load_checkpoint, save_checkpoint

    src, out = Path(checkpoint), Path(out_dir)
    ckpt = load_checkpoint(src)
    trainer = ckpt.extra.get("trainer", {})
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    save_checkpoint(tmp, ckpt.policy, target=None, extra={"exported_from": src.name, "trainer": trainer})
    if (src / CONFIG_FILE).is_file():
        shutil.copy2(src / CONFIG_FILE, tmp / CONFIG_FILE)
    summary = {
        "checkpoint": src.name,
        **trainer.get("state", {}),
        "objective": trainer.get("objective"),
        **(note or {}),
    }
    (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="more-export", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("checkpoint", help="a training checkpoint directory (runs/<run>/checkpoints/step-N)")
    parser.add_argument("out_dir", help="where the inference checkpoint goes (replaced)")
    args = parser.parse_args(argv)
    print(export_policy(args.checkpoint, args.out_dir))
    return 0
