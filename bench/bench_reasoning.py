"""What writing the scene first costs per decision (JSON on stdout): one policy decoded with its reasoning
(`model.reasoning: scene`) and the same weights without it (`set_reasoning("none")`), batch 1, greedy and draft
decoders, on random frames (the text written depends on the frame, its cost on its length: reported).

    python bench/bench_reasoning.py [--checkpoint DIR] [--rounds 5] [--decisions 20] [--threads 1] [--json]

Without --checkpoint a tiny random policy of the demo's shape at 96x144 is built (it writes random text up to the
16-character cap, the worst case; a trained policy stops at its second full stop, ~3-10 characters).
Variants run in turn in one process (the machine is shared and noisy); best and median per variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch


def _policy(checkpoint: str | None):
    from more_model.checkpoint import load_policy
    from more_model.config import TinyBackboneConfig
    from more_model.testing import make_tiny_policy, tiny_config

    if checkpoint:
        policy = load_policy(checkpoint)
        if policy.config.reasoning == "none":
            raise SystemExit(f"bench_reasoning: {checkpoint} is not a reasoning model (model.reasoning is 'none')")
        return policy
    tiny = TinyBackboneConfig(hidden_size=128, intermediate_size=512, num_layers=3, num_heads=4, patch_size=16)
    config = tiny_config(tiny=tiny, image_height=96, image_width=144, text_first=True, reasoning="scene",
                         num_experts=4, top_k=1, attn_rank=0)  # fmt: skip
    return make_tiny_policy(seed=0, config=config)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="a reasoning checkpoint (default: tiny random)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--decisions", type=int, default=20, help="decisions per round and variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="accepted for bench/run_all.py: the output is one JSON line")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    policy = _policy(args.checkpoint)
    h, w = policy.image_size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(args.decisions)]
    instruction = "go to the box with the letter C"
    decoder = policy.action_decoder()
    variants = {
        "greedy_reasoning": ("scene", lambda f: policy.decode([f], [instruction])),
        "greedy_plain": ("none", lambda f: policy.decode([f], [instruction])),
        "draft_reasoning": ("scene", lambda f: decoder.decode([f], [instruction])),
        "draft_plain": ("none", lambda f: decoder.decode([f], [instruction])),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    chars: list[int] = []
    with torch.no_grad():
        for _ in range(args.rounds):
            for name, (kind, run) in variants.items():
                policy.set_reasoning(kind)
                start = time.perf_counter()
                for f in frames:
                    out = run(f)
                    if kind == "scene" and name.startswith("greedy"):
                        chars.append(len(out.reasoning[0]))
                times[name].append((time.perf_counter() - start) * 1e3 / len(frames))
    result = {k: {"best_ms": min(v), "median_ms": statistics.median(v)} for k, v in times.items()}
    for d in ("greedy", "draft"):
        result[f"{d}_cost_ratio_median"] = result[f"{d}_reasoning"]["median_ms"] / result[f"{d}_plain"]["median_ms"]
    result["reasoning_chars_mean"] = float(np.mean(chars))
    result["checkpoint"] = args.checkpoint or "tiny random 96x144 (3 layers, width 128)"
    result["threads"] = args.threads
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
