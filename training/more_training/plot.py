"""Training curves as PNG from metrics.jsonl (`more-plot RUN_DIR [--out curves.png]`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from .metrics import METRICS_FILE

DEFAULT_KEYS = ("loss", "loss/td", "loss/conservative", "loss/il", "loss/moe", "q/taken", "lr", "samples_per_s")


def read_metrics(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(run_dir: str | Path, out: str | Path | None = None, keys: Sequence[str] = DEFAULT_KEYS) -> Path:
    """Draw one panel per metric present in RUN_DIR/metrics.jsonl (and eval/* success rates); return the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir / METRICS_FILE)
    if not records:
        raise ValueError(f"{run_dir / METRICS_FILE} holds no records")
    present = [k for k in keys if any(k in r for r in records)]
    present += sorted({k for r in records for k in r if k.startswith("eval/")})
    cols = 2
    rows = max(1, -(-len(present) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, present, strict=False):
        pts = [(r["step"], r[key]) for r in records if key in r]
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
    parser = argparse.ArgumentParser(prog="more-plot", description="Draw training curves from a run's metrics.jsonl.")
    parser.add_argument("run_dir", help="a training output directory (holds metrics.jsonl)")
    parser.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    parser.add_argument("--keys", nargs="*", default=list(DEFAULT_KEYS), help="metrics to draw")
    args = parser.parse_args(argv)
    print(plot_curves(args.run_dir, args.out, args.keys))
    return 0
