"""Fuyu-8B width on CPU, 2 of its 36 decoder layers: the real 262144-token vocabulary, hidden 4096, 64 heads,
FFN 16384, 8 MixLoRA experts of rank 32 (top-2) + attention LoRA rank 32, random weights (seeded).

What runs at real width: adapter injection (counts by hand), bin restriction (the full-vocabulary head is never
multiplied: its untouched pages stay non-resident), the window pass against transformers' forward, bit-exact rows,
draft decoding equal to greedy (right and partly wrong drafts), and the checkpoint round trip of the adapters.

fp32, not bf16: this CPU (AVX2) has no bf16 arithmetic, so bf16 matmuls run ~2x slower, and in fp32 transformers'
incremental greedy (other kernels) is comparable bin for bin; bf16 runs on the GPU benchmark (bench/gpu.py).
Memory: the 262144 x 4096 embedding and lm_head are full-size tensors whose rows beyond the tokenizer's ids are
never touched (random_fuyu.py); the decoder layers are 1.6 GB; the round trip's second policy shares the frozen
backbone tensors. Measured alone (`pytest test_full_width.py`): see docs/model.md (peak RSS, time).
"""

import copy
import os

import numpy as np
import pytest
import torch

from more_model.checkpoint import load_checkpoint, save_checkpoint
from more_model.random_fuyu import FUYU_VOCAB, random_fuyu_backbone, random_fuyu_policy
from more_model.testing import randomize_adapters
from more_model.window_decoder import WINDOW

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

HIDDEN, INNER, EXPERTS, RANK = 4096, 16384, 8, 32
IMAGE = (60, 60)  # 4 patches of 30 px: the width is what this test is about, not the prompt length
INSTRUCTION = ["go to the red ball"]


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    backbone, tokenizer = random_fuyu_backbone("cpu", torch.float32, seed=0, lazy_vocab=True, num_hidden_layers=2)
    # an adapter-free twin for the checkpoint round trip: new modules sharing every (frozen) backbone tensor
    twin = copy.deepcopy(backbone, memo={id(p): p for p in backbone.parameters()})
    policy = random_fuyu_policy(
        backbone=(backbone, tokenizer), config_changes=dict(image_height=IMAGE[0], image_width=IMAGE[1])
    )
    randomize_adapters(policy, seed=1, std=0.02)
    images = [np.random.default_rng(0).integers(0, 256, (*IMAGE, 3), dtype=np.uint8)]
    return policy, (twin, tokenizer), images


@pytest.fixture(scope="module")
def decoded(model):
    """Greedy both ways (transformers' one-token steps; window passes), lm_head hooked, resident memory watched."""
    policy, _, images = model
    calls = []
    hook = policy.backbone.lm_head.register_forward_hook(lambda *a: calls.append(1))
    before = _rss_bytes()
    try:
        with torch.no_grad():
            batch = policy.encode(images, INSTRUCTION)
            hf_bins, hf_logits = policy.decode_batch(batch)
            decoder = policy.action_decoder()
            prompt, first = decoder.prefill(batch)
            greedy = decoder.greedy_from(prompt, first)
    finally:
        hook.remove()
    return dict(
        calls=calls, rss_growth=_rss_bytes() - before, hf=(hf_bins, hf_logits), decoder=decoder, prompt=prompt,
        first=first, greedy=greedy,
    )  # fmt: skip


def test_adapters_are_injected_at_fuyu_width(model):
    policy, _, _ = model
    lm = policy.backbone.model.language_model
    assert lm.embed_tokens.weight.shape == policy.backbone.lm_head.weight.shape == (FUYU_VOCAB, HIDDEN)
    assert len(lm.layers) == 2 and lm.layers[0].self_attn.num_heads == 64
    ffn = lm.layers[0].mlp
    assert tuple(ffn.lora_up_A.shape) == (EXPERTS, RANK, HIDDEN)
    assert tuple(ffn.lora_up_B.shape) == (EXPERTS, INNER, RANK)
    assert tuple(ffn.lora_down_A.shape) == (EXPERTS, RANK, INNER)
    assert tuple(ffn.lora_down_B.shape) == (EXPERTS, HIDDEN, RANK)
    assert ffn.router.weight.dtype == torch.float32 and ffn.top_k == 2
    experts = EXPERTS * 2 * RANK * (HIDDEN + INNER)  # up and down LoRA of each expert: 1,310,720 each
    router = EXPERTS * HIDDEN
    attention = RANK * (HIDDEN + 3 * HIDDEN) + RANK * (HIDDEN + HIDDEN)  # query_key_value + dense
    assert (experts, router, attention) == (10_485_760, 32_768, 786_432)  # docs/model.md's per-layer numbers
    assert sum(p.numel() for _, p in policy.named_adapter_parameters()) == 2 * (experts + router + attention)


def test_the_full_vocabulary_head_is_never_multiplied(decoded):
    """Bins come from the 256 bin rows only: lm_head is never called, and decoding leaves the untouched rows of
    the 262144-row head and embedding non-resident (a full-vocabulary matmul would read 4.3 GB of them)."""
    assert decoded["calls"] == []
    hf_bins, _ = decoded["hf"]
    assert ((hf_bins >= 0) & (hf_bins < 256)).all()
    assert decoded["rss_growth"] < 1.0e9, f"resident memory grew by {decoded['rss_growth'] / 1e9:.2f} GB"


@torch.no_grad()
def test_drafts_equal_greedy_at_fuyu_width(decoded):
    decoder, prompt, first, greedy = (decoded[k] for k in ("decoder", "prompt", "first", "greedy"))
    hf_bins, hf_logits = decoded["hf"]
    assert torch.equal(greedy.bins, hf_bins)  # transformers' one-token steps: same bins, logits to rounding
    torch.testing.assert_close(greedy.logits, hf_logits, rtol=1e-4, atol=1e-4)
    right = decoder.draft_from(prompt, first, greedy.bins.numpy())
    assert right.batch_passes == 2
    wrong = greedy.bins.numpy().copy()
    wrong[0, [2, 6]] = (wrong[0, [2, 6]] + 17) % 256  # slots 3 and 7
    partly = decoder.draft_from(prompt, first, wrong)
    assert partly.batch_passes > 2
    for out in (right, partly):  # (no draft, up to 11 more passes here, is covered at tiny size)
        assert torch.equal(out.bins, greedy.bins) and torch.equal(out.logits, greedy.logits)  # bit for bit


@torch.no_grad()
def test_window_rows_are_bit_exact_and_compute_transformers_layers(model, decoded):
    policy, _, images = model
    decoder, prompt, greedy = decoded["decoder"], decoded["prompt"], decoded["greedy"]
    x1 = greedy.bins[:, :WINDOW].clone()
    x2 = x1.clone()
    x2[0, 5:] = (x2[0, 5:] + 101) % 256
    w1, w2 = decoder.window.window(prompt, x1), decoder.window.window(prompt, x2)
    assert torch.equal(w1[0, :5], w2[0, :5]) and not torch.equal(w1[0, 5], w2[0, 5])
    teacher_forced = policy.slot_logits(policy.encode(images, INSTRUCTION, bins=greedy.bins.numpy()))
    torch.testing.assert_close(w1, teacher_forced[:, 1:], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(decoded["first"], teacher_forced[:, 0], rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_checkpoint_round_trip_at_fuyu_width(model, decoded, tmp_path):
    policy, twin, images = model
    save_checkpoint(tmp_path / "ckpt", policy, extra={"note": "random weights"})
    loaded = load_checkpoint(tmp_path / "ckpt", backbone=twin).policy
    saved, restored = policy.adapter_state_dict(), loaded.adapter_state_dict()
    assert set(saved) == set(restored) and len(saved) == 2 * (4 + 1 + 4)  # per layer: experts 4, router, attn 2x2
    assert all(torch.equal(saved[n], restored[n]) for n in saved)
    greedy = decoded["greedy"]
    out = loaded.action_decoder().draft_batch(loaded.encode(images, INSTRUCTION), greedy.bins.numpy())
    assert out.batch_passes == 2
    assert torch.equal(out.bins, greedy.bins) and torch.equal(out.logits, greedy.logits)
