"""`more-bench`: model micro-benchmarks, printed as JSON (variants run in turn in one process; best and median).

    more-bench decode --json    decoders side by side on recorded simulator episodes (scripted expert, go_to;
                                every frame decoded in order, batch 1, model time per action) with the demo
                                policy (models/demo): our greedy KV-cache decoder (ours_ms), transformers'
                                generate with a bins-only logits processor (baseline_ms, speedup), temporal
                                drafts (draft_ms, draft_passes_mean, draft_speedup vs ours,
                                draft_speedup_vs_generate), window-pass greedy, and with --compiled the
                                compiled window pass; same_actions: every decoder chose the same bins
    more-bench mixlora --json   MixLoRA token dispatch vs all-experts-dense, training tokens/s:
                                dispatch_tok_s, dense_tok_s, speedup

Timings on a shared machine are noisy: every variant is measured in alternating rounds after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from more_common.cli import OneLineArgumentParser, int_at_least, torch_device

DEMO_CHECKPOINT = "models/demo"  # relative to the repository root, where the benchmarks run


def _timeit(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Run each fn `warmup` times, then `rounds` alternating rounds; seconds per call."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _env(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads()}
    env["cpu"] = _cpu_name()
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def record_episodes(
    image_size: tuple[int, int], episodes: int = 3, max_frames: int = 24, task: str = "go_to", seed: int = 0
) -> list[tuple[str, list[Any]]]:
    """Consecutive frames of scripted-expert episodes in the simulator (more_sim), at `image_size`:
    [(instruction, [HxWx3 uint8 frames])] per episode, at most `max_frames` frames each (5 Hz decisions)."""
    try:
        from more_sim.config import SimConfig
        from more_sim.env import make_env
        from more_sim.expert import ScriptedExpert
    except ImportError as err:  # more_model does not depend on the simulator; this benchmark does
        raise RuntimeError(f"recorded episodes need the simulator package more_sim ({err})") from err
    height, width = image_size
    env = make_env(task, config=SimConfig(image_height=height, image_width=width))
    recorded = []
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            expert, instruction, frames = ScriptedExpert(), obs["instruction"], [obs["image"]]
            while len(frames) < max_frames:
                obs, _, terminated, truncated, info = env.step(expert.act(info))
                frames.append(obs["image"])
                if terminated or truncated:
                    break
            recorded.append((instruction, frames))
    finally:
        env.close()
    return recorded


def bench_decode(
    rounds: int,
    warmup: int,
    device: str,
    full_size: bool,
    checkpoint: str | None = None,
    episodes: int = 3,
    frames: int = 24,
    compiled: bool = False,
    policy: Any = None,
) -> dict[str, Any]:
    """Decoders side by side on the frames of recorded simulator episodes, each frame decoded in order:
    greedy (ours: MoREPolicy.decode_batch), transformers' generate, temporal drafts (DraftState: the previous
    frame's bins as the draft, dropped at a new episode/instruction and after terminate), window-pass greedy,
    and with `compiled` the drafts through the compiled (+ CUDA-graph on CUDA) window pass. Model time per
    action (inputs encoded beforehand); one round = every frame once per decoder, rounds alternate."""
    import numpy as np
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    from .checkpoint import load_policy
    from .config import MoREConfig
    from .draft_decoder import DraftState
    from .policy import MoREPolicy
    from .testing import randomize_adapters

    if policy is not None:
        model = "given"
    elif full_size:
        policy, model = _random_fuyu_8b_policy(device), "fuyu-8b (random weights)"
    elif checkpoint:
        policy, model = load_policy(checkpoint, device=device), f"checkpoint {checkpoint}"
    else:
        policy = randomize_adapters(MoREPolicy.from_config(MoREConfig(), seed=0, device=device)).eval()
        model = "tiny (random weights)"
    recorded = record_episodes(policy.image_size, episodes, frames)
    encoded = [(ins, [policy.encode([f], [ins]) for f in fs]) for ins, fs in recorded]
    n_frames = sum(len(fs) for _, fs in encoded)
    bin_ids, valid_bins, slots = policy.bin_token_ids, policy.valid_bins, policy.num_slots
    tok = policy.action_tokenizer
    cuda = device.startswith("cuda")

    class BinsOnly(LogitsProcessor):
        """Only the bin tokens the slot being generated has (all 256 in every slot by default)."""

        def __init__(self, prompt_length: int) -> None:
            self.prompt_length = prompt_length

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            slot = input_ids.shape[1] - self.prompt_length
            masked = torch.full_like(scores, float("-inf"))
            ids = bin_ids[valid_bins[slot]]
            masked[:, ids] = scores[:, ids]
            return masked

    def generate(batch: Any) -> np.ndarray:
        out = policy.backbone.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            pixel_values=batch.pixel_values.to(policy.dtype),
            max_new_tokens=slots,
            min_new_tokens=slots,
            do_sample=False,
            use_cache=True,
            logits_processor=LogitsProcessorList([BinsOnly(batch.input_ids.shape[1])]),
            pad_token_id=0,
        )
        return tok.contract_bins(tok.token_ids_to_bins(out[:, batch.input_ids.shape[1] :].cpu().numpy()))

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    decoders = {"draft": policy.action_decoder()}
    if compiled:
        decoders["compiled"] = policy.action_decoder(compile=True, cuda_graph=cuda)
    passes: dict[str, list[int]] = {name: [] for name in decoders}

    def run(name: str) -> list[np.ndarray]:
        """Bins of every frame, in order, by one decoder."""
        bins = []
        if name in decoders:
            state = DraftState(decoders[name])
            passes[name].clear()
            for ins, batches in encoded:
                state.reset()  # a new episode
                for b in batches:
                    out = state.decode_encoded(b, [ins])
                    bins.append(out.bins[0])
                    passes[name].append(int(out.passes[0]))
        else:
            for _, batches in encoded:
                for b in batches:
                    if name == "greedy":  # slot order -> contract order [12], as the drafts return
                        bins.append(tok.contract_bins(policy.decode_batch(b)[0][0].cpu().numpy()))
                    elif name == "window_greedy":
                        bins.append(tok.contract_bins(decoders["draft"].greedy_batch(b).bins[0].cpu().numpy()))
                    else:
                        bins.append(generate(b)[0])
        sync()
        return bins

    names = ["greedy", "generate", "window_greedy", *decoders]
    with torch.no_grad():
        results = {name: np.stack(run(name)) for name in names}  # also compiles / captures what needs it
        same = all(np.array_equal(results["greedy"], r) for r in results.values())
        times = _timeit({name: (lambda n=name: run(n)) for name in names}, rounds, warmup)
        one = encoded[0][1][0]
        e2e_frames = [(recorded[0][0], f) for f in recorded[0][1][:4]]
        e2e = _timeit({"e2e": lambda: [(policy.decode([f], [i]), sync()) for i, f in e2e_frames]}, 3, 1)["e2e"]
    ms = {name: 1e3 * min(t) / n_frames for name, t in times.items()}
    med = {name: 1e3 * statistics.median(t) / n_frames for name, t in times.items()}
    changed, start = [], 0  # bins that differ from the previous frame's (same episode): the drafts' room
    for _, batches in encoded:
        episode = results["greedy"][start : start + len(batches)]
        changed += (episode[1:] != episode[:-1]).sum(axis=1).tolist()
        start += len(batches)
    out: dict[str, Any] = {
        "benchmark": "decode",
        "model": model,
        "params": sum(p.numel() for p in policy.parameters()),
        "batch": 1,
        "image": list(policy.image_size),
        "prompt_tokens": int(one.input_ids.shape[1]),
        "inputs": f"{len(encoded)} recorded go_to episodes (scripted expert), {n_frames} frames decoded in order",
        "bins_changed_per_decision_mean": round(float(np.mean(changed)), 2) if changed else None,
        "ours_ms": round(ms["greedy"], 3),
        "baseline_ms": round(ms["generate"], 3),
        "speedup": round(ms["generate"] / ms["greedy"], 2),
        "ours_median_ms": round(med["greedy"], 3),
        "baseline_median_ms": round(med["generate"], 3),
        "ours_hz": round(1e3 / ms["greedy"], 1),
        "window_greedy_ms": round(ms["window_greedy"], 3),
        "window_greedy_median_ms": round(med["window_greedy"], 3),
        "draft_ms": round(ms["draft"], 3),
        "draft_median_ms": round(med["draft"], 3),
        "draft_hz": round(1e3 / ms["draft"], 1),
        "draft_passes_mean": round(float(np.mean(passes["draft"])), 3),
        "draft_passes_histogram": np.bincount(passes["draft"], minlength=13)[2:].tolist(),
        "draft_speedup": round(ms["greedy"] / ms["draft"], 2),
        "draft_speedup_median": round(med["greedy"] / med["draft"], 2),
        "draft_speedup_vs_generate": round(ms["generate"] / ms["draft"], 2),
        "greedy_passes": slots,
        "end_to_end_ms": round(1e3 * min(e2e) / len(e2e_frames), 3),
        "same_actions": same,
        "decoders_compared": names,
        "rounds": rounds,
        **_env(device),
    }
    if compiled:
        out.update(
            compiled_ms=round(ms["compiled"], 3),
            compiled_median_ms=round(med["compiled"], 3),
            compiled_hz=round(1e3 / ms["compiled"], 1),
            compiled_passes_mean=round(float(np.mean(passes["compiled"])), 3),
            compiled_cuda_graph=cuda,
        )
    return out


def _random_fuyu_8b_policy(device: str, **text_changes: Any) -> Any:
    """A Fuyu-8B sized policy with random bf16 weights (19 GB: GPU only) and random adapters, a tiny tokenizer
    for the inputs. `text_changes` shrink the language model (tests run this code path on CPU at toy size)."""
    from .random_fuyu import random_fuyu_policy
    from .testing import randomize_adapters

    return randomize_adapters(random_fuyu_policy(device, **text_changes), std=0.02)


MIXLORA_SEQUENCE = 256  # tokens per sequence of the MixLoRA benchmark's batch


def bench_mixlora(rounds: int, warmup: int, device: str, tokens: int) -> dict[str, Any]:
    import torch

    from .config import MoREConfig, TinyBackboneConfig
    from .mixlora import set_dense_experts
    from .policy import MoREPolicy

    config = MoREConfig(
        tiny=TinyBackboneConfig(hidden_size=256, intermediate_size=1024, num_layers=4, num_heads=4),
        num_experts=8,
        top_k=2,
        rank=8,
        alpha=16.0,
        attn_rank=0,
        dropout=0.0,
    )
    policy = MoREPolicy.from_config(config, seed=0, device=device).train()
    model = policy.backbone.model
    seq = MIXLORA_SEQUENCE
    batch = max(1, tokens // seq)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 500, (batch, seq), generator=g).to(device)
    params = policy.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step(dense: bool) -> None:
        set_dense_experts(policy, dense)
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids).last_hidden_state.float().pow(2).mean()
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times = _timeit({"dispatch": lambda: step(False), "dense": lambda: step(True)}, rounds, warmup)
    n_tok = batch * seq
    disp, dense = n_tok / min(times["dispatch"]), n_tok / min(times["dense"])
    return {
        "benchmark": "mixlora",
        "hidden": 256,
        "layers": 4,
        "experts": 8,
        "top_k": 2,
        "rank": 8,
        "tokens_per_step": n_tok,
        "dispatch_tok_s": round(disp, 1),
        "dense_tok_s": round(dense, 1),
        "speedup": round(disp / dense, 2),
        "dispatch_median_tok_s": round(n_tok / statistics.median(times["dispatch"]), 1),
        "dense_median_tok_s": round(n_tok / statistics.median(times["dense"]), 1),
        "rounds": rounds,
        **_env(device),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = OneLineArgumentParser(prog="more-bench", description="MoRE model benchmarks (JSON on stdout).")
    parser.add_argument("which", choices=("decode", "mixlora"), help="benchmark to run")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default prints it indented)")
    parser.add_argument(
        "--rounds", type=int_at_least(1), default=None, help="timed rounds per variant (decode 5, mixlora 20)"
    )
    parser.add_argument(
        "--warmup", type=int_at_least(0), default=None, help="untimed calls per variant first (decode 1, mixlora 3)"
    )
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--full-size", action="store_true", help="decode: Fuyu-8B size with random weights (GPU)")
    parser.add_argument(
        "--checkpoint",
        default=DEMO_CHECKPOINT,
        help=f"decode: the policy to decode with (default {DEMO_CHECKPOINT}; 'random': a random tiny model)",
    )
    parser.add_argument("--episodes", type=int_at_least(1), default=3, help="decode: recorded simulator episodes")
    parser.add_argument(
        "--frames", type=int_at_least(2), default=24, help="decode: at most this many frames per episode"
    )
    parser.add_argument("--compiled", action="store_true", help="decode: also the compiled window pass (slow on CPU)")
    parser.add_argument(
        "--tokens",
        type=int_at_least(MIXLORA_SEQUENCE),
        default=1024,
        help=f"mixlora: tokens per training step, >= {MIXLORA_SEQUENCE} (whole sequences of {MIXLORA_SEQUENCE})",
    )
    parser.add_argument(
        "--threads", type=int_at_least(0, 256), default=0, help="torch threads, 0..256 (0: torch's default)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    decode = args.which == "decode"
    rounds = args.rounds if args.rounds is not None else (5 if decode else 20)
    warmup = args.warmup if args.warmup is not None else (1 if decode else 3)
    checkpoint = None if args.checkpoint == "random" else args.checkpoint
    if decode and not args.full_size and checkpoint and not Path(checkpoint, "more_checkpoint.json").is_file():
        print(
            f"more-bench: --checkpoint {checkpoint} is not a MoRE checkpoint (run from the repository root, "
            "or pass --checkpoint DIR / random)",
            file=sys.stderr,
        )
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if decode:
        from .checkpoint_meta import CheckpointError

        try:  # a damaged checkpoint is bad input: bench_decode loads it first, so this is one line before any work
            result = bench_decode(
                rounds, warmup, args.device, args.full_size, checkpoint, args.episodes, args.frames, args.compiled
            )
        except CheckpointError as err:
            print(f"more-bench: error: {' '.join(str(err).split())}", file=sys.stderr)
            return 2
    else:
        result = bench_mixlora(rounds, warmup, args.device, args.tokens)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
