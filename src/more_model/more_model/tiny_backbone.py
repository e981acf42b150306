"""A tiny Fuyu backbone built offline: a small BPE tokenizer with Fuyu's special tokens + a small FuyuConfig.

Nothing here downloads anything. The result is an ordinary HF directory (config.json, model.safetensors,
tokenizer.json) that `FuyuForCausalLM.from_pretrained` and `PreTrainedTokenizerFast.from_pretrained` reload.

[Contract] of the tokenizer (what FuyuProcessor and the action tokenizer rely on):
- id 0 is "<unk>", also the padding id (FuyuProcessor hard-codes pad_token_id = 0); "<s>" is BOS.
- "|SPEAKER|" (image patch placeholder) and "|NEWLINE|" (end of a patch row) are plain BPE vocab
  entries, isolated by the pre-tokenizer; otherwise the processor's image token count check fails.
- "<0x00>".."<0xFF>" are byte-fallback tokens (any instruction text encodes); "<0x00>".."<0x04>" are
  also isolated as literal strings, because the processor writes "<0x04>" (beginning of answer) as text.
- "0".."255" are vocab entries: the action bin tokens (same rule as Fuyu's own vocabulary).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .config import TinyBackboneConfig

NUM_BIN_STRINGS = 256
SPECIAL_TOKENS = ("<unk>", "<s>", "|ENDOFTEXT|")
IMAGE_TOKEN = "|SPEAKER|"
NEWLINE_TOKEN = "|NEWLINE|"
BOA_TOKEN = "<0x04>"
_ISOLATE = r"\|SPEAKER\||\|NEWLINE\||<0x0[0-4]>"

# Words of the six tasks and QUART's prompts; BPE merges learnt from them keep prompts short (~15 tokens).
_CORPUS = (
    "What action should the legged robot take to {}?",
    "go to the red ball slowly with a trot gait",
    "go to the blue cube normally with a pronk gait",
    "go to the green cone quickly with a bound gait",
    "go to the yellow box with a pace gait",
    "distinguish the purple ball from the orange one and go to it",
    "go through the gap between the two walls, go through the door",
    "go avoid the obstacle and reach the goal, avoid the pillar",
    "crawl under the bar, crawl under the table",
    "unload the package, unload the cargo on the back",
    "stop, stand still, turn left, turn right, move forward, move backward, walk",
    "white black gray pink brown cyan magenta target object marker gate tunnel",
)


def _learned_bpe(corpus: tuple[str, ...], vocab_size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Train a BPE on the corpus; return its tokens in id order and its merges."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    alphabet = [*"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,?!'-_:;()/", "▁"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, initial_alphabet=alphabet)
    tok.train_from_iterator(corpus, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    return tokens, merges


def build_tiny_tokenizer() -> Any:
    """The tiny tokenizer as a transformers PreTrainedTokenizerFast (deterministic, ~5 ms)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    fixed = [
        *SPECIAL_TOKENS,
        IMAGE_TOKEN,
        NEWLINE_TOKEN,
        *(f"<0x{i:02X}>" for i in range(256)),
        *(str(b) for b in range(NUM_BIN_STRINGS)),
    ]
    learned, merges = _learned_bpe(_CORPUS, vocab_size=1000)  # the corpus runs out of merges first
    vocab: dict[str, int] = {}
    for token in (*fixed, *learned):
        vocab.setdefault(token, len(vocab))
    # ignore_merges: a pre-token that is a vocab entry ("|SPEAKER|", "<0x04>") maps to it directly.
    bpe = models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, ignore_merges=True)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(_ISOLATE), "isolated"),
        ]
    )
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="|ENDOFTEXT|", pad_token="<unk>"
    )


def tiny_fuyu_config(cfg: TinyBackboneConfig, tokenizer: Any) -> Any:
    """A FuyuConfig of the tiny size whose ids agree with `tokenizer`."""
    from transformers import FuyuConfig

    vocab = tokenizer.get_vocab()
    text_config = dict(
        model_type="persimmon",
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        hidden_act="relu2",
        qk_layernorm=True,
        # given explicitly: a dict text_config would otherwise fall back to rope_theta 10000
        rope_parameters={"rope_type": "default", "rope_theta": 25000.0, "partial_rotary_factor": 0.5},
        pad_token_id=vocab["<unk>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["|ENDOFTEXT|"],
    )
    return FuyuConfig(
        text_config=text_config,
        patch_size=cfg.patch_size,
        num_channels=3,
        image_token_id=vocab[IMAGE_TOKEN],
        pad_token_id=vocab["<unk>"],
    )


def build_tiny_backbone(cfg: TinyBackboneConfig, tokenizer: Any, seed: int = 0) -> Any:
    """A randomly initialised tiny FuyuForCausalLM (float32, eval mode)."""
    from transformers import FuyuForCausalLM

    config = tiny_fuyu_config(cfg, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FuyuForCausalLM(config)
    return model.eval()


def save_backbone_dir(directory: str | Path, model: Any, tokenizer: Any, state_dict: dict | None = None) -> Path:
    """Write an ordinary HF directory: config.json, model.safetensors (`state_dict` or the model's), tokenizer."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    state = state_dict if state_dict is not None else model.state_dict()
    # safetensors refuses shared storage; the tiny config does not tie weights, copies keep it generic
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(out / "model.safetensors"))
    tokenizer.save_pretrained(out)
    return out
