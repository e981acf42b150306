"""Model benchmarks (run by bench/run_all.py): decode latency and MixLoRA training throughput, JSON on one line.

    python bench/bench_model.py --json            both benchmarks, one JSON object {"decode": ..., "mixlora": ...}
    more-bench decode --json / more-bench mixlora --json    the same, one at a time

decode:  the demo policy on recorded simulator episodes (every frame in order, batch 1): our greedy KV-cache
         decoder (ours_ms), transformers' generate (baseline_ms, speedup), temporal drafts (draft_ms,
         draft_passes_mean, draft_speedup), window-pass greedy; same_actions (best of the rounds; medians too).
mixlora: MixLoRA token dispatch vs all-experts-dense, training tokens/s: dispatch_tok_s, dense_tok_s, speedup.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from more_model.bench import bench_decode, bench_mixlora


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line (the default indents it)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    demo = Path(__file__).resolve().parents[1] / "models" / "demo"
    results = {
        # decode: every frame of 3 recorded episodes per round, so fewer rounds than the micro-benchmark
        "decode": bench_decode(max(3, args.rounds // 4), 1, args.device, full_size=False, checkpoint=str(demo)),
        "mixlora": bench_mixlora(max(3, args.rounds // 4), 1, args.device, tokens=1024),
    }
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
