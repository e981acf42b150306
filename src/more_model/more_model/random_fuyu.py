"""Fuyu-8B-shaped policies with random weights: the GPU benchmark's model and the full-width CPU tests.

`random_fuyu_backbone` builds transformers' FuyuForCausalLM with Fuyu-8B's configuration (hidden 4096, 64
heads, FFN 16384, qk-layernorm, relu2, partial rotary 0.5, rope theta 25000, 30-px patches, vocabulary 262144)
and random weights, fewer layers on request. The tiny offline tokenizer stands in for Fuyu's (its ids are
valid Fuyu ids; decoding cost lies in the decoder and the head, not in which ids the prompt has).

`lazy_vocab=True` (CPU tests): the 262144 x 4096 embedding and lm_head are real tensors of full size, but only
the rows of the tokenizer's ids get weights; the other rows are left as the operating system's untouched zero
pages, never made resident unless something reads them (the bin-restricted head reads 256 rows, the embedding
the prompt's). A 2-layer model then holds ~0.85 GB of resident weights in bf16 instead of ~5.1 GB.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FUYU_VOCAB = 262144


def random_fuyu_backbone(
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
    lazy_vocab: bool = False,
    **text_changes: Any,
) -> tuple[Any, Any]:
    """(FuyuForCausalLM in eval mode, tiny tokenizer): Fuyu-8B's configuration with `text_changes` applied
    (e.g. num_hidden_layers=2), random weights (seeded), built directly in `dtype` on `device`."""
    from transformers import FuyuConfig, FuyuForCausalLM

    from .tiny_backbone import IMAGE_TOKEN, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = FuyuConfig(image_token_id=tokenizer.get_vocab()[IMAGE_TOKEN], pad_token_id=0)
    for key, value in text_changes.items():
        setattr(config.text_config, key, value)
    config.text_config.rope_parameters["rope_theta"] = 25000.0  # Fuyu-8B's value (the dict default is 10000)
    vocab = config.text_config.vocab_size
    if lazy_vocab:
        if torch.device(device).type != "cpu":
            raise ValueError("lazy_vocab is for CPU (it relies on untouched pages not being resident)")
        config.text_config.vocab_size = max(256, len(tokenizer))  # built small, widened below
    from transformers.initialization import no_init_weights

    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the target dtype directly: an fp32 copy of Fuyu-8B needs 38 GB
    try:
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(seed)
            with no_init_weights():  # skip torch's default init: transformers' init below replaces it anyway
                backbone = FuyuForCausalLM(config)
            backbone.init_weights()  # normal(0, 0.02) matrices, zero biases, unit norms, rotary tables
    finally:
        torch.set_default_dtype(default)
    backbone.eval()
    if lazy_vocab:
        widen_vocabulary(backbone, vocab)
    return backbone, tokenizer


@torch.no_grad()
def _zero_rows(rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """A zero [rows, cols] tensor whose untouched pages stay lazy on CPU: numpy's zeros is calloc, which maps
    fresh zero pages for a large block without writing them (torch.empty gave recycled heap memory, not zeros,
    when the heap had a large enough free block; torch.zeros would write, i.e. make resident, every page)."""
    if like.device.type != "cpu":
        return torch.zeros(rows, cols, dtype=like.dtype, device=like.device)
    import numpy as np

    size = torch.empty((), dtype=like.dtype).element_size()
    raw = torch.from_numpy(np.zeros((rows, cols * size), dtype=np.uint8))
    return raw.view(like.dtype)


def widen_vocabulary(backbone: Any, vocab: int) -> None:
    """Give the embedding and lm_head `vocab` rows (the existing rows kept, the new ones untouched zero pages)."""
    lm = backbone.model.language_model
    old_embed, old_head = lm.embed_tokens.weight, backbone.lm_head.weight
    n, hidden = old_embed.shape
    if vocab < n:
        raise ValueError(f"cannot widen a vocabulary of {n} to {vocab}")
    embed = _zero_rows(vocab, hidden, old_embed)
    embed[:n].copy_(old_embed)
    head = _zero_rows(vocab, hidden, old_head)
    head[:n].copy_(old_head)
    lm.embed_tokens = nn.Embedding(vocab, hidden, padding_idx=lm.embed_tokens.padding_idx, _weight=embed)
    lm.vocab_size = vocab
    backbone.lm_head = nn.Linear(hidden, vocab, bias=False, device="meta")
    backbone.lm_head.weight = nn.Parameter(head)
    backbone.config.text_config.vocab_size = vocab


def random_fuyu_policy(
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
    lazy_vocab: bool = False,
    backbone: Any = None,
    config_changes: dict[str, Any] | None = None,
    **text_changes: Any,
) -> Any:
    """A MoRE policy on `random_fuyu_backbone` (or on a given (backbone, tokenizer)) with the paper's adapters
    (`fuyu_8b_config()`: 8 experts top-2 rank 32, attention LoRA rank 32; `config_changes` override), in eval
    mode. Adapters as injected: B = 0 (use testing.randomize_adapters to make them matter)."""
    from more_common.action_contract import ActionSpec

    from .action_tokenizer import ActionTokenizer
    from .config import fuyu_8b_config
    from .policy import MoREPolicy

    if backbone is None:
        backbone = random_fuyu_backbone(device, dtype, seed, lazy_vocab, **text_changes)
    model, tokenizer = backbone
    config = fuyu_8b_config(**(config_changes or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        policy = MoREPolicy(config, model, tokenizer, ActionTokenizer.from_tokenizer(tokenizer, ActionSpec()))
    return policy.to(device).eval()
