"""random_fuyu.py (the GPU benchmark's and the full-width test's model builder) at toy width, and
load_checkpoint's in-memory backbone override."""

import numpy as np
import pytest
import torch

from more_model.checkpoint import CheckpointError, load_checkpoint
from more_model.random_fuyu import FUYU_VOCAB, random_fuyu_backbone, random_fuyu_policy, widen_vocabulary
from more_model.testing import make_tiny_checkpoint

TOY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4)


@torch.no_grad()
def test_lazy_vocabulary_keeps_the_tokenizer_rows_and_leaves_the_rest_zero():
    lazy, tokenizer = random_fuyu_backbone("cpu", torch.float32, seed=3, lazy_vocab=True, **TOY)
    n = max(256, len(tokenizer))  # built with this many rows, then widened to Fuyu's vocabulary
    small, _ = random_fuyu_backbone("cpu", torch.float32, seed=3, **TOY, vocab_size=n)
    embed = lazy.model.language_model.embed_tokens.weight
    assert embed.shape == lazy.lm_head.weight.shape == (FUYU_VOCAB, 64)
    assert lazy.config.text_config.vocab_size == FUYU_VOCAB
    assert torch.equal(embed[:n], small.model.language_model.embed_tokens.weight)
    assert torch.equal(lazy.lm_head.weight[:n], small.lm_head.weight)
    assert embed[n : n + 4096].abs().sum() == 0  # untouched pages read as zeros (never read by decoding)
    for a, b in zip(lazy.model.language_model.parameters(), small.model.language_model.parameters(), strict=True):
        if a.shape == b.shape:
            assert torch.equal(a, b)  # the same model as a normal build with the tokenizer's vocabulary
    policy = random_fuyu_policy(backbone=(lazy, tokenizer), config_changes=dict(image_height=30, image_width=30))
    out = policy.action_decoder().decode([np.zeros((30, 30, 3), np.uint8)], ["go"])
    assert out.bins.shape == (1, 12) and policy.image_size == (30, 30)


def test_builder_errors_name_the_problem():
    with pytest.raises(ValueError, match="lazy_vocab is for CPU"):
        random_fuyu_backbone("cuda", lazy_vocab=True, **TOY)
    backbone, _ = random_fuyu_backbone("cpu", torch.float32, **TOY, vocab_size=512)
    with pytest.raises(ValueError, match="cannot widen a vocabulary of 512 to 300"):
        widen_vocabulary(backbone, 300)


def test_a_tiny_checkpoint_refuses_an_in_memory_backbone(tmp_path):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    backbone = random_fuyu_backbone("cpu", torch.float32, **TOY, vocab_size=1024)
    with pytest.raises(CheckpointError, match="carries its own backbone"):
        load_checkpoint(ckpt, backbone=backbone)
