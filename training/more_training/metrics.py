"""Training telemetry on rank 0: a progress bar (loss, samples/s), TensorBoard scalars and metrics.jsonl.

metrics.jsonl (one JSON object per logged step, appended, flushed) is what `more-plot` draws; it survives a
crash and is truncated back to the resumed step on resume so that curves never double back.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records with step > `step` (written after the checkpoint a run resumes from)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if rec.get("step", 0) <= step:
            kept.append(line)
    path.write_text("".join(k + "\n" for k in kept))


class Telemetry:
    def __init__(
        self, out_dir: Path, total_steps: int, start_step: int, enabled: bool, progress: bool, tensorboard: bool
    ) -> None:
        self.enabled = enabled
        self.path = out_dir / METRICS_FILE
        self._bar: Any = None
        self._tb: Any = None
        if not enabled:
            return
        truncate_metrics(self.path, start_step)
        self._file = open(self.path, "a")  # noqa: SIM115 (closed in close())
        # the bar appears with the first finished step: an error before it (bad data) stays the only line printed
        self._bar_span = (total_steps, start_step) if progress else None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_step + 1)
        self._t0 = time.monotonic()

    def step(self, n: int = 1) -> None:
        if self._bar is None and self.enabled and self._bar_span is not None:
            from tqdm import tqdm

            total, initial = self._bar_span
            self._bar = tqdm(
                total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr, mininterval=1.0
            )
        if self._bar is not None:
            self._bar.update(n)

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        rec = {"step": step, "time_s": round(time.monotonic() - self._t0, 3), **values}
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
        if self._bar is not None:
            post = {"loss": f"{values.get('loss', float('nan')):.4f}"}
            if "samples_per_s" in values:
                post["samples/s"] = f"{values['samples_per_s']:.0f}"
            if "lr" in values:
                post["lr"] = f"{values['lr']:.2e}"
            self._bar.set_postfix(post, refresh=False)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
