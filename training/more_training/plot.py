"""Training curves as PNG from metrics.jsonl (`more-plot RUN_DIR [--out curves.png]`)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from more_common.cli import OneLineArgumentParser

from .metrics import METRICS_FILE

DEFAULT_KEYS = ("loss", "loss/td", "loss/conservative", "loss/il", "loss/moe", "q/taken", "lr", "samples_per_s")


class PlotError(ValueError):
    """No metrics to draw: the run directory or its metrics.jsonl is missing, unreadable or empty."""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl: JSON objects with a numeric "step" (other lines, e.g. one cut by a kill,
    are skipped)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError as err:
        raise PlotError(f"{path} not found: not a training run directory") from err
    except OSError as err:
        raise PlotError(f"{path}: cannot read ({err.strerror or err})") from err
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(record, dict) and _number(record.get("step")):
            records.append(record)
    return records


def plot_curves(
    run_dir: str | Path, out: str | Path | None = None, keys: Sequence[str] = DEFAULT_KEYS, require_keys: bool = False
) -> Path:
    """Draw one panel per metric present in RUN_DIR/metrics.jsonl (and eval/* success rates); return the PNG path.

    With `require_keys` (keys the user named) a key the metrics do not have is an error naming it; the default
    keys are drawn where present (an imitation run has no TD loss)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PlotError(f"{run_dir} is not a directory (a training run directory holds {METRICS_FILE})")
    records = read_metrics(run_dir / METRICS_FILE)
    if not records:
        raise PlotError(f"{run_dir / METRICS_FILE} holds no records")
    if out is not None and Path(out).suffix.lower() != ".png":
        raise PlotError(f"--out {str(out)!r} must end in .png")
    present = [k for k in keys if any(_number(r.get(k)) for r in records)]
    missing = [k for k in keys if k not in present]
    if require_keys and missing:
        there = sorted({k for r in records for k, v in r.items() if _number(v)} - {"step"})
        raise PlotError(f"--keys {missing} not in {run_dir / METRICS_FILE} (numeric keys there: {there})")
    present += sorted({k for r in records for k, v in r.items() if k.startswith("eval/") and _number(v)})
    cols = 2
    rows = max(1, -(-len(present) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, present, strict=False):
        pts = [(r["step"], r[key]) for r in records if _number(r.get(key))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if key.startswith("eval/") else None, lw=1)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    fig.tight_layout()
    out_path = Path(out) if out else run_dir / "curves.png"
    fig.savefig(out_path, dpi=90)
    plt.close(fig)
    return out_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="more-plot", description="Draw training curves from a run's metrics.jsonl.")
    parser.add_argument("run_dir", help="a training output directory (holds metrics.jsonl)")
    parser.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    parser.add_argument("--keys", nargs="*", default=list(DEFAULT_KEYS), help="metrics to draw")
    args = parser.parse_args(argv)
    from more_common.errors import one_line

    try:
        print(plot_curves(args.run_dir, args.out, args.keys, require_keys=args.keys != list(DEFAULT_KEYS)))
    except (PlotError, OSError) as err:  # OSError: the PNG cannot be written (e.g. --out in a missing directory)
        print(f"more-plot: {one_line(err)}", file=sys.stderr)
        return 2
    return 0
