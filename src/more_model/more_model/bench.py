"""`more-bench`: model micro-benchmarks, printed as JSON (variants run in turn in one process; best and median).

    more-bench decode --json    our bin-restricted KV-cache decoder vs transformers' generate (KV cache, a
                                logits processor restricting to the bin tokens), same tiny model and inputs:
                                ours_ms, baseline_ms, speedup (per 12-token action, batch 1, model time only)
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
from typing import Any


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


def bench_decode(rounds: int, warmup: int, device: str, full_size: bool) -> dict[str, Any]:
    import numpy as np
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    from .config import MoREConfig
    from .policy import MoREPolicy
    from .testing import randomize_adapters

    if full_size:
        policy = _random_fuyu_8b_policy(device)
        image_hw = (240, 240)
    else:
        policy = randomize_adapters(MoREPolicy.from_config(MoREConfig(), seed=0, device=device)).eval()
        image_hw = policy.image_size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8)
    instruction = "go to the red ball"
    batch = policy.encode([image], [instruction])
    bin_ids = policy.bin_token_ids

    class BinsOnly(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            masked = torch.full_like(scores, float("-inf"))
            masked[:, bin_ids] = scores[:, bin_ids]
            return masked

    def ours() -> torch.Tensor:
        return policy.decode_batch(batch)[0]

    def baseline() -> torch.Tensor:
        out = policy.backbone.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            pixel_values=batch.pixel_values.to(policy.dtype),
            max_new_tokens=12,
            min_new_tokens=12,
            do_sample=False,
            use_cache=True,
            logits_processor=LogitsProcessorList([BinsOnly()]),
            pad_token_id=0,
        )
        return out[:, batch.input_ids.shape[1] :]

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        same = bool(torch.equal(bin_ids[ours()], baseline()))
        times = _timeit({"ours": lambda: (ours(), sync()), "baseline": lambda: (baseline(), sync())}, rounds, warmup)
        e2e = _timeit({"e2e": lambda: (policy.decode([image], [instruction]), sync())}, max(3, rounds // 2), 1)["e2e"]
    ours_ms, base_ms = 1e3 * min(times["ours"]), 1e3 * min(times["baseline"])
    return {
        "benchmark": "decode",
        "model": "fuyu-8b (random weights)" if full_size else "tiny",
        "params": sum(p.numel() for p in policy.parameters()),
        "batch": 1,
        "image": list(image_hw),
        "prompt_tokens": int(batch.input_ids.shape[1]),
        "ours_ms": round(ours_ms, 3),
        "baseline_ms": round(base_ms, 3),
        "speedup": round(base_ms / ours_ms, 2),
        "ours_median_ms": round(1e3 * statistics.median(times["ours"]), 3),
        "baseline_median_ms": round(1e3 * statistics.median(times["baseline"]), 3),
        "ours_hz": round(1e3 / ours_ms, 1),
        "end_to_end_ms": round(1e3 * min(e2e), 3),
        "same_actions": same,
        "rounds": rounds,
        **_env(device),
    }


def _random_fuyu_8b_policy(device: str, **text_changes: Any) -> Any:
    """A Fuyu-8B sized policy with random bf16 weights (19 GB: GPU only), a tiny tokenizer for the inputs.

    `text_changes` shrink the language model (tests run this code path on CPU at toy size).
    """
    import torch
    from transformers import FuyuConfig, FuyuForCausalLM

    from more_common.action_contract import ActionSpec

    from .action_tokenizer import ActionTokenizer
    from .config import fuyu_8b_config
    from .policy import MoREPolicy
    from .tiny_backbone import IMAGE_TOKEN, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()  # its ids stand in for Fuyu's; the cost is in the decoder and the head
    config = FuyuConfig(image_token_id=tokenizer.get_vocab()[IMAGE_TOKEN], pad_token_id=0)
    for key, value in text_changes.items():
        setattr(config.text_config, key, value)
    config.text_config.rope_parameters["rope_theta"] = 25000.0  # Fuyu-8B's value (the dict default is 10000)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # build in bf16 directly: an fp32 copy would need 38 GB
    try:
        with torch.device(device):
            backbone = FuyuForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    spec = ActionSpec()
    policy = MoREPolicy(fuyu_8b_config(), backbone, tokenizer, ActionTokenizer.from_tokenizer(tokenizer, spec))
    return policy.to(device).eval()


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
    seq = 256
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
    parser = argparse.ArgumentParser(prog="more-bench", description="MoRE model benchmarks (JSON on stdout).")
    parser.add_argument("which", choices=("decode", "mixlora"), help="benchmark to run")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default prints it indented)")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per variant first")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--full-size", action="store_true", help="decode: Fuyu-8B size with random weights (GPU)")
    parser.add_argument("--tokens", type=int, default=1024, help="mixlora: tokens per training step")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        print("more-bench: --rounds must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.which == "decode":
        result = bench_decode(args.rounds, args.warmup, args.device, args.full_size)
    else:
        result = bench_mixlora(args.rounds, args.warmup, args.device, args.tokens)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
