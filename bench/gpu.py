"""Full-size GPU benchmark: Fuyu-8B + MixLoRA with random bf16 weights, decode Hz and training samples/s, one JSON.

    make bench-gpu                                    # = python bench/gpu.py --out bench_gpu.json (CUDA machine)
    python bench/gpu.py --device cpu --tiny --out x   # smoke run of the same code at toy size (the test runs it)

Model: FuyuForCausalLM with Fuyu-8B's configuration (36 layers, hidden 4096, vocabulary 262144) and random
weights, the paper's adapters (8 experts top-2 rank 32 on every FFN, attention LoRA rank 32) with random B.
Decoding uses the inference form: LoRA stored in bf16, attention LoRA merged. Inputs: frames of recorded
simulator episodes at 240x240 (scripted expert, go_to) when the simulator renders here, else a synthetic
panning texture; each frame decoded in order (batch 1).

Decoders (per action, best and median over rounds; Hz = 1000 / best ms):
  greedy_transformers   MoREPolicy.decode_batch: transformers' forward + KV cache, 1 prefill + 11 one-token steps
  greedy_window         window passes (window_decoder.py), eager: prefill + 11 passes
  draft_window          temporal drafts (DraftState), eager
  greedy_graph / draft_graph           the same with the prompt and window passes captured as CUDA graphs
  greedy_compiled / draft_compiled     torch.compile'd layers inside the CUDA graphs (skipped by --no-compile)
Also: prefill_ms and window_pass_ms of the fastest path, and the draft rate at the demo policy's measured
2.8 passes per action (random weights make consecutive decisions unrealistically alike or unlike).
Exactness: draft_equals_greedy_same_path (must be true for every path); frames_agreeing_with_greedy_transformers
is the share of frames where a path picked transformers' bins: kernel paths round differently, and random bf16
weights leave many near-tied bins, so < 1.0 there is rounding, not a decoding error.
Training: the RL step of the paper (target forwards, Bellman targets, TD + conservative + load balance), adapters
only, AdamW, bf16 autocast, gradient checkpointing, batch 16: samples/s per GPU. Peak memory per phase.
Goals on an H100/H200 (the issue): >= 10 Hz greedy, >= 20 Hz with drafts, >= 19 training samples/s.
A time budget (--budget-s, default 450 s) skips what would not fit, and says so in the JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEMO_PASSES = 2.8  # the demo policy's mean passes per action on recorded episodes (docs/benchmarks.md)
TINY = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, vocab_size=1024)


def _frames(size: tuple[int, int], episodes: int, frames: int) -> tuple[list[tuple[str, list[np.ndarray]]], str]:
    try:
        from more_model.bench import record_episodes

        return record_episodes(size, episodes, frames), "recorded simulator episodes (scripted expert, go_to)"
    except Exception as err:  # no simulator or no renderer on this machine: a camera panning over a texture
        rng = np.random.default_rng(0)
        texture = rng.integers(0, 256, (size[0], size[1] * 2, 3), dtype=np.uint8)
        eps = [("go to the red ball", [texture[:, 4 * t : 4 * t + size[1]].copy() for t in range(frames)])]
        return eps * episodes, f"synthetic panning texture ({type(err).__name__}: {err})"


def _build(device: str, tiny: bool, seed: int) -> Any:
    from more_model.random_fuyu import random_fuyu_policy
    from more_model.testing import randomize_adapters

    changes = dict(image_height=60, image_width=60) if tiny else {}
    text = TINY if tiny else {}
    policy = random_fuyu_policy(device, torch.bfloat16, seed=seed, config_changes=changes, **text)
    return randomize_adapters(policy, seed=seed, std=0.02)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 1e9, 2) if device.startswith("cuda") else None


def bench_train(policy: Any, device: str, batch: int, steps: int, images: list[np.ndarray]) -> dict[str, Any]:
    """The paper's RL step on random data (adapters only, bf16 autocast, gradient checkpointing)."""
    from more_model.losses import LossConfig, bellman_targets, more_loss
    from more_model.target import TargetNetwork

    rng = np.random.default_rng(0)
    frames = [images[i % len(images)] for i in range(batch)]
    instructions = ["go to the red ball"] * batch
    current = policy.encode(frames, instructions, bins=rng.integers(0, 256, (batch, 12)))
    nxt = policy.encode(frames[::-1], instructions)
    reward = torch.zeros(batch, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    success = torch.ones(batch, dtype=torch.bool, device=device)
    steps_to_end = torch.full((batch,), 5, dtype=torch.long, device=device)
    policy.set_trainable("adapters")
    policy.backbone.gradient_checkpointing_enable()
    policy.train()
    target = TargetNetwork.from_policy(policy)
    opt = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-5)
    cfg = LossConfig(objective="rl", alpha=0.5, beta=0.002)

    def step() -> float:
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            y = bellman_targets(
                target.slot_logits(policy, current),
                target.first_slot_logits(policy, nxt),
                reward,
                done,
                success,
                steps_to_end,
                gamma=0.99,
            )
            out = policy(current)
            loss = more_loss(
                cfg,
                out.slot_logits,
                current.bins,
                out.router_probs,
                out.token_mask,
                targets=y,
                router_experts=out.router_experts,
            ).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        target.update(policy, 0.005)
        _sync(device)
        return float(loss)

    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    policy.backbone.gradient_checkpointing_disable()
    policy.eval()  # the optimizer and target copy go with this frame
    return {
        "objective": "rl (TD + conservative + load balance, target network)",
        "batch": batch,
        "tokens_per_sample": int(current.input_ids.shape[1]),
        "trainable_params": sum(p.numel() for p in policy.trainable_parameters()),
        "gradient_checkpointing": True,
        "autocast": "bf16",
        "steps": steps,
        "samples_per_s_best": round(batch / min(times), 2),
        "samples_per_s_median": round(batch / statistics.median(times), 2),
    }


def bench_decoding(
    policy: Any, device: str, episodes: list, rounds: int, compile: bool, deadline: float
) -> dict[str, Any]:
    from more_model.bench import _timeit
    from more_model.draft_decoder import DraftState

    cuda = device.startswith("cuda")
    encoded = [(ins, [policy.encode([f], [ins]) for f in fs]) for ins, fs in episodes]
    n_frames = sum(len(b) for _, b in encoded)
    decoders: dict[str, Any] = {"window": policy.action_decoder()}
    skipped = {}
    if cuda:
        decoders["graph"] = policy.action_decoder(cuda_graph=True)
        if compile:
            decoders["compiled"] = policy.action_decoder(compile=True, cuda_graph=True)
        else:
            skipped["compiled"] = "--no-compile"
    else:
        skipped["graph"] = skipped["compiled"] = "CUDA graphs need a CUDA device"
    passes: dict[str, list[int]] = {}

    def run(name: str) -> np.ndarray:
        kind, path = name.split("_", 1)
        bins = []
        if path == "transformers":
            for _, batches in encoded:
                bins += [policy.decode_batch(b)[0][0].cpu().numpy() for b in batches]
        elif kind == "greedy":
            for _, batches in encoded:
                bins += [decoders[path].greedy_batch(b).bins[0].cpu().numpy() for b in batches]
        else:
            state, passes[name] = DraftState(decoders[path]), []
            for ins, batches in encoded:
                state.reset()
                for b in batches:
                    out = state.decode_encoded(b, [ins])
                    bins.append(out.bins[0])
                    passes[name].append(int(out.passes[0]))
        _sync(device)
        return np.stack(bins)

    names = ["greedy_transformers"] + [f"{k}_{p}" for p in decoders for k in ("greedy", "draft")]
    results, times, first_call_s = {}, {}, {}
    with torch.no_grad():
        for name in names:  # first call: compiles / captures what needs it
            if time.monotonic() > deadline:
                skipped[name] = "time budget"
                continue
            t0 = time.perf_counter()
            results[name] = run(name)
            first_call_s[name] = round(time.perf_counter() - t0, 1)
        timed = [n for n in names if n in results]
        times = _timeit({n: (lambda n=n: run(n)) for n in timed}, rounds, 0)
        fastest = next(p for p in ("compiled", "graph", "window") if f"greedy_{p}" in results)
        prompt_kv, first = decoders[fastest].prefill(encoded[0][1][0])
        bins = torch.zeros(1, 11, dtype=torch.long, device=first.device)
        parts = _timeit(
            {
                "prefill": lambda: (decoders[fastest].prefill(encoded[0][1][0]), _sync(device)),
                "window": lambda: (decoders[fastest].window.window(prompt_kv, bins), _sync(device)),
            },
            max(5, rounds),
            2,
        )
    ref = results["greedy_transformers"]
    paths = {n.split("_", 1)[1] for n in results if n != "greedy_transformers"}
    prefill_ms, window_ms = 1e3 * min(parts["prefill"]), 1e3 * min(parts["window"])
    out = {
        "frames": n_frames,
        "prompt_tokens": int(encoded[0][1][0].input_ids.shape[1]),
        "decoders": {
            n: {
                "ms_best": round(1e3 * min(times[n]) / n_frames, 2),
                "ms_median": round(1e3 * statistics.median(times[n]) / n_frames, 2),
                "hz": round(n_frames / min(times[n]), 2),
                "passes_mean": round(float(np.mean(passes[n])), 3) if n in passes else 12,
                "first_call_s": first_call_s[n],
            }
            for n in timed
        },
        # drafts equal their own path's greedy whatever the floats (the exactness contract); the paths differ
        # from each other and from transformers by rounding, which flips near-tied bins (bf16, random weights)
        "draft_equals_greedy_same_path": {
            p: bool(np.array_equal(results[f"draft_{p}"], results[f"greedy_{p}"]))
            for p in sorted(paths)
            if f"draft_{p}" in results and f"greedy_{p}" in results
        },
        "frames_agreeing_with_greedy_transformers": {
            n: round(float((r == ref).all(axis=1).mean()), 3) for n, r in results.items()
        },
        "fastest_path": fastest,
        "prefill_ms": round(prefill_ms, 2),
        "window_pass_ms": round(window_ms, 2),
        "draft_hz_at_demo_passes": round(1e3 / (prefill_ms + (DEMO_PASSES - 1) * window_ms), 2),
        "greedy_hz_from_parts": round(1e3 / (prefill_ms + 11 * window_ms), 2),
        "skipped": skipped,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="toy-size model (smoke runs on CPU)")
    ap.add_argument("--out", default="bench_gpu.json", help="the JSON file to write")
    ap.add_argument("--episodes", type=int, default=2)
    ap.add_argument("--frames", type=int, default=12, help="frames per episode")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per decoder")
    ap.add_argument("--batch", type=int, default=16, help="training batch")
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile path")
    ap.add_argument("--budget-s", type=float, default=450.0, help="skip decoders that would start after this")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py: --device cuda but torch sees no CUDA device (use --device cpu --tiny)", file=sys.stderr)
        return 2
    if not args.tiny and not args.device.startswith("cuda"):
        print("bench/gpu.py: the full-size model needs a GPU (use --tiny on CPU)", file=sys.stderr)
        return 2
    start = time.monotonic()
    deadline = start + args.budget_s
    if not args.device.startswith("cuda"):
        torch.set_num_threads(1)
    report: dict[str, Any] = {"benchmark": "gpu", "device": args.device, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(args.device)
        report["cuda"] = torch.version.cuda
    t0 = time.perf_counter()
    policy = _build(args.device, args.tiny, seed=0)
    _sync(args.device)
    report["model"] = (
        f"{'toy' if args.tiny else 'fuyu-8b'} (random bf16 weights), {len(policy.ffns)} layers, MixLoRA "
        f"{policy.config.num_experts} experts top-{policy.config.top_k} rank {policy.config.rank}, "
        f"attention LoRA rank {policy.config.attn_rank}"
    )
    report["params"] = sum(p.numel() for p in policy.parameters())
    report["build_s"] = round(time.perf_counter() - t0, 1)
    report["weights_gb"] = _peak_gb(args.device)
    size = policy.image_size
    episodes, report["inputs"] = _frames(size, args.episodes, args.frames)
    report["image"] = list(size)

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    frames = [f for _, fs in episodes for f in fs]
    report["train"] = bench_train(policy, args.device, args.batch, args.train_steps, frames)
    report["train"]["peak_gb"] = _peak_gb(args.device)
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    policy.cast_adapters_for_inference().merge_attention_lora()  # the inference form
    report["decode"] = bench_decoding(policy, args.device, episodes, args.rounds, not args.no_compile, deadline)
    report["decode"]["peak_gb"] = _peak_gb(args.device)
    hz = {n: d["hz"] for n, d in report["decode"]["decoders"].items()}
    report["goals"] = (
        None
        if args.tiny
        else {
            "greedy_hz_ge_10": max(v for n, v in hz.items() if n.startswith("greedy")) >= 10,
            "draft_hz_ge_20": max(v for n, v in hz.items() if n.startswith("draft")) >= 20,
            "train_samples_per_s_ge_19": report["train"]["samples_per_s_best"] >= 19,
        }
    )
    report["wall_s"] = round(time.monotonic() - start, 1)
    text = json.dumps(report, indent=2)
    Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
