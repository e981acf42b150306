"""`more-info`: parameter counts of a MoRE model, derived from a meta-device build (no weights allocated).

    more-info --model fuyu-8b --experts 8 --rank 32 --top-k 2 --json

builds FuyuForCausalLM with Fuyu-8B's configuration on the meta device, injects the adapters exactly as
training does, and counts: base_params (the backbone), adapter_params (LoRA + routers), total_params, and
active_params_per_token = total minus the expert LoRA weights of the N - K experts a token does not use.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from more_common.cli import OneLineArgumentParser, int_at_least


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = OneLineArgumentParser(prog="more-info", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("fuyu-8b", "tiny"), default="fuyu-8b", help="backbone architecture")
    # bounds: the counts build the model's modules (on the meta device): 10^8 experts ran for minutes
    parser.add_argument("--experts", type=int_at_least(1, 1024), default=8, help="MixLoRA experts per FFN (N)")
    parser.add_argument("--top-k", type=int_at_least(1, 1024), default=2, help="experts per token (K), <= N")
    parser.add_argument("--rank", type=int_at_least(1, 4096), default=32, help="LoRA rank of the experts")
    parser.add_argument(
        "--attn-rank",
        type=int_at_least(0, 4096),
        default=None,
        help="LoRA rank on attention (default: --rank; 0: none)",
    )
    parser.add_argument("--no-moe", action="store_true", help="one dense LoRA per FFN (sets --experts 1 --top-k 1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser.parse_args(argv)


def count_params(model_name: str, experts: int, top_k: int, rank: int, attn_rank: int, use_moe: bool) -> dict[str, Any]:
    """Build on the meta device, inject adapters, count."""
    from .config import MoREConfig, fuyu_8b_config
    from .mixlora import inject_adapters, is_adapter_name, mixlora_modules

    if not use_moe:
        experts, top_k = 1, 1
    common = dict(num_experts=experts, top_k=top_k, rank=rank, alpha=2.0 * rank, attn_rank=attn_rank, use_moe=use_moe)
    if model_name == "fuyu-8b":
        from .fuyu_loader import meta_fuyu_8b

        config = fuyu_8b_config(**common)
        model = meta_fuyu_8b()
    else:
        import torch

        from .tiny_backbone import build_tiny_tokenizer, tiny_fuyu_config

        config = MoREConfig(**common)
        from transformers import FuyuForCausalLM

        with torch.device("meta"):
            model = FuyuForCausalLM(tiny_fuyu_config(config.tiny, build_tiny_tokenizer()))
    ffns = inject_adapters(model, config)
    named = list(model.named_parameters())
    base = sum(p.numel() for n, p in named if not is_adapter_name(n))
    adapters = sum(p.numel() for n, p in named if is_adapter_name(n))
    expert_lora = sum(p.numel() for m in mixlora_modules(model) for n, p in m.named_parameters() if "lora_" in n)
    inactive = expert_lora * (config.num_experts - config.top_k) // config.num_experts
    text = model.config.text_config
    return {
        "model": model_name,
        "experts": config.num_experts,
        "top_k": config.top_k,
        "rank": config.rank,
        "attn_rank": config.attn_rank,
        "use_moe": config.use_moe,
        "layers": text.num_hidden_layers,
        "adapted_layers": len(ffns),
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "vocab_size": text.vocab_size,
        "base_params": base,
        "adapter_params": adapters,
        "expert_lora_params": expert_lora,
        "total_params": base + adapters,
        "active_params_per_token": base + adapters - inactive,
        "total_params_billions": round((base + adapters) / 1e9, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    attn_rank = args.rank if args.attn_rank is None else args.attn_rank
    try:
        info = count_params(args.model, args.experts, args.top_k, args.rank, attn_rank, not args.no_moe)
    except ValueError as err:
        print(f"more-info: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(
                f"{key:>26}  {value:,}"
                if isinstance(value, int) and not isinstance(value, bool)
                else f"{key:>26}  {value}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
